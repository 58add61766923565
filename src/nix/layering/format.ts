/**
 * `json.dumps(layers)` as auto-layer.py prints it: `", "` separators, ASCII only (non-ASCII as lowercase `\uXXXX`,
 * astral characters as surrogate pairs), so `nixreg layers` output is byte-identical to the script's stdout.
 */
export function formatLayersLikePython(layers: string[][]): string {
  return '[' + layers.map((l) => '[' + l.map(pythonJsonString).join(', ') + ']').join(', ') + ']';
}

function pythonJsonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => (c === '\u007f' ? c : '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));
}
