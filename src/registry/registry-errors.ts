import { readLimited } from './auth/authenticator.js';
import type { HttpResponse } from './transport.js';

/** Summarise a registry error body (`{"errors":[{code,message,detail}]}`) as `CODE: message; CODE2: message`. */
export async function summarizeErrorBody(res: HttpResponse): Promise<string> {
  let text: string;
  try {
    text = await readLimited(res.body, 64 * 1024);
  } catch {
    return '';
  }
  try {
    const json = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(json.errors) && json.errors.length)
      return json.errors
        .slice(0, 3)
        .map((e) => [e.code, e.message].filter(Boolean).join(': '))
        .join('; ')
        .slice(0, 300);
  } catch {
    /* not JSON */
  }
  const plain = text.replace(/\s+/g, ' ').trim();
  return /^</.test(plain) ? '' : plain.slice(0, 200); // skip HTML error pages
}
