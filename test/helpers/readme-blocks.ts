/**
 * The command lines of a Markdown file's shell code blocks: fences tagged sh, bash, shell, console or untagged
 * (the README's command blocks are untagged). In a block where some line starts with `$ `, only those lines are
 * commands (the rest is output); otherwise every non-empty line is one. A line ending in `\` continues on the
 * next one; the joined text keeps a single space where the break was.
 */
export interface ReadmeCommand {
  /** 1-based line number of the command's first line */
  line: number;
  /** the command as written (continuations joined, `$ ` prompt removed, trailing comment kept) */
  text: string;
}

const SHELL_FENCES = new Set(['', 'sh', 'bash', 'shell', 'console']);

export function shellCommands(markdown: string): ReadmeCommand[] {
  const lines = markdown.split('\n');
  const out: ReadmeCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    if (SHELL_FENCES.has(fence[1]!)) out.push(...blockCommands(lines.slice(start, end), start + 1));
    i = end;
  }
  return out;
}

function blockCommands(block: string[], firstLine: number): ReadmeCommand[] {
  const prompted = block.some((l) => l.startsWith('$ '));
  const out: ReadmeCommand[] = [];
  for (let i = 0; i < block.length; i++) {
    let l = block[i]!;
    if (prompted) {
      if (!l.startsWith('$ ')) continue;
      l = l.slice(2);
    }
    if (!l.trim() || l.trimStart().startsWith('#')) continue;
    const line = firstLine + i;
    let text = l.trimEnd();
    while (text.endsWith('\\') && i + 1 < block.length) text = text.slice(0, -1).trimEnd() + ' ' + block[++i]!.trim();
    out.push({ line, text });
  }
  return out;
}

/** The command without its trailing `# comment` (a `#` after whitespace, outside quotes). */
export function withoutComment(text: string): string {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && i > 0 && /\s/.test(text[i - 1]!)) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

/** Whether `nixreg` (or its `nix-prefetch-docker` alias) is run by the line, as a command word. */
export const runsNixreg = (text: string): boolean => /(^|[|;&]\s*|^\S+=\S+\s+(\S+=\S+\s+)*)(nixreg|nix-prefetch-docker)\s/.test(withoutComment(text));
