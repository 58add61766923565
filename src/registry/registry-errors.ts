import { readLimited } from './auth/authenticator.js';
import type { HttpResponse } from './transport.js';

/** A registry error body read once: its `errors[].code`s and a one-line summary for messages. */
export interface RegistryErrorBody {
  codes: string[];
  /** `CODE: message; CODE2: message`, a plain-text body's first 200 characters, or '' */
  summary: string;
}

/** Read a registry error body (`{"errors":[{code,message,detail}]}`); consumes it. */
export async function readErrorBody(res: HttpResponse): Promise<RegistryErrorBody> {
  let text: string;
  try {
    text = await readLimited(res.body, 64 * 1024);
  } catch {
    return { codes: [], summary: '' };
  }
  try {
    const json = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    if (Array.isArray(json.errors) && json.errors.length)
      return {
        codes: json.errors.map((e) => (typeof e?.code === 'string' ? e.code : '')),
        summary: json.errors
          .slice(0, 3)
          .map((e) => [e.code, e.message].filter(Boolean).join(': '))
          .join('; ')
          .slice(0, 300),
      };
  } catch {
    /* not JSON */
  }
  const plain = text.replace(/\s+/g, ' ').trim();
  return { codes: [], summary: /^</.test(plain) ? '' : plain.slice(0, 200) }; // skip HTML error pages
}

/** Summarise a registry error body as `CODE: message; CODE2: message`; consumes it. */
export async function summarizeErrorBody(res: HttpResponse): Promise<string> {
  return (await readErrorBody(res)).summary;
}
