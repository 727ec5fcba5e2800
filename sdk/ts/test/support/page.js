// Reads the `<!-- example: NAME -->` blocks of docs/PROTOCOL.md: frame examples as their bytes
// (header line, `# cap` and `# payload` hex), other examples as their text lines.

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const PAGE = resolve(here, "../../../../docs/PROTOCOL.md");

/** name -> the lines of its ```text block. */
export function examples() {
  const text = readFileSync(PAGE, "utf8");
  const out = new Map();
  const re = /<!-- example: ([a-z0-9_]+) -->\n```text\n([\s\S]*?)\n```/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.set(m[1], m[2].split("\n"));
  return out;
}

const HEADER_LINE = /^([0-9a-f]{8}) ([0-9a-f]{4}) ([0-9a-f]{4}) ([0-9a-f]{4}) ([0-9a-f]{4}) ([0-9a-f]{32}) ([0-9a-f]{4}) ([0-9a-f]{16})$/;

/**
 * The frames of an example: for each header line, `{ header, cap, payload, bytes }` (Buffers);
 * `bytes` is the whole frame when its hex is complete (the header's len says so), else null.
 */
export function frames(lines) {
  const out = [];
  let section = null;
  for (const line of lines) {
    const h = HEADER_LINE.exec(line);
    if (h !== null) {
      out.push({ header: Buffer.from(h.slice(1).join(""), "hex"), cap: [], payload: [] });
      section = null;
    } else if (line === "# cap") section = "cap";
    else if (line === "# payload") section = "payload";
    else if (line.startsWith("#")) section = null;
    else if (section !== null && /^[0-9a-f]+$/.test(line)) out.at(-1)[section].push(line);
  }
  return out.map((f) => {
    const cap = Buffer.from(f.cap.join(""), "hex");
    const payload = Buffer.from(f.payload.join(""), "hex");
    const whole = Buffer.concat([f.header, cap, payload]);
    return { header: f.header, cap, payload, bytes: whole.readUInt32BE(0) === whole.length ? whole : null };
  });
}

/** The one whole frame of a one-frame example. */
export function frame(ex, name) {
  const lines = ex.get(name);
  if (lines === undefined) throw new Error(`docs/PROTOCOL.md has no example ${name}`);
  const fs = frames(lines);
  if (fs.length !== 1 || fs[0].bytes === null) throw new Error(`example ${name} is not one whole frame`);
  return fs[0].bytes;
}

/** `key = hex` lines (and their `= hex` continuations) of a text example, as a map. */
export function assignments(lines) {
  const out = new Map();
  let key = null;
  for (const line of lines) {
    const m = /^(\S[^=]*?)\s*=\s*(.*)$/.exec(line);
    const cont = /^\s+=\s*(.*)$/.exec(line);
    if (cont !== null && key !== null) out.set(key, cont[1].trim());
    else if (m !== null) {
      key = m[1].trim();
      out.set(key, m[2].trim());
    }
  }
  return out;
}
