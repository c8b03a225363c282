/**
 * HTML character references resolved as Python's `html.unescape` does (CLIP unescapes every caption twice).
 * @module
 */

/**
 * HTML's legacy entities, the only ones that also match without `;` (and as a prefix: "&copyright" is
 * "©right" in Python too): the Latin-1 names for U+00A0 … U+00FF in order, plus these ten. With them the
 * missing-`;` and prefix rules match Python's `html.unescape` exactly.
 */
const LEGACY = new Map<string, string>([
  ...(
    'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute ' +
    'micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig ' +
    'Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash ' +
    'Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ' +
    'ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc ' +
    'uuml yacute thorn yuml'
  )
    .split(' ')
    .map((name, i): [string, string] => [name, String.fromCharCode(0xa0 + i)]),
  ['amp', '&'],
  ['lt', '<'],
  ['gt', '>'],
  ['quot', '"'],
  ['AMP', '&'],
  ['LT', '<'],
  ['GT', '>'],
  ['QUOT', '"'],
  ['COPY', '©'],
  ['REG', '®'],
]);
/** Other named entities (with `;` only) common in web captions; Python knows every HTML5 name; these are the usual ones. */
const NAMED = new Map<string, string>([
  ...LEGACY,
  ['apos', "'"],
  ['trade', '™'],
  ['hellip', '…'],
  ['mdash', '—'],
  ['ndash', '–'],
  ['lsquo', '‘'],
  ['rsquo', '’'],
  ['sbquo', '‚'],
  ['ldquo', '“'],
  ['rdquo', '”'],
  ['bdquo', '„'],
  ['bull', '•'],
  ['euro', '€'],
]);
/** What Python substitutes for `&#128;` … `&#159;` (the Windows-1252 reading browsers use). */
const CP1252 =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/** One character reference, resolved as Python's `html.unescape` does (exactly, but for rare names outside the tables). */
function resolveEntity(match: string, body: string): string {
  if (body.startsWith('#')) {
    const hex = body[1] === 'x' || body[1] === 'X';
    const n = Number.parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10);
    if (n === 0) return '\ufffd';
    if (n === 0x0d) return '\r';
    if (n >= 0x80 && n <= 0x9f) return CP1252[n - 0x80]!;
    if ((n >= 0xd800 && n <= 0xdfff) || !(n <= 0x10ffff)) return '\ufffd';
    const forbidden =
      n <= 0x08 ||
      n === 0x0b ||
      (n >= 0x0e && n <= 0x1f) ||
      n === 0x7f ||
      (n >= 0xfdd0 && n <= 0xfdef) ||
      (n & 0xfffe) === 0xfffe;
    return forbidden ? '' : String.fromCodePoint(n);
  }
  const full = body.endsWith(';') ? NAMED.get(body.slice(0, -1)) : LEGACY.get(body);
  if (full !== undefined) return full;
  for (let end = body.length - 1; end > 1; end--) {
    const char = LEGACY.get(body.slice(0, end));
    if (char !== undefined) return char + body.slice(end);
  }
  return match;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  const lower = c | 0x20;
  return isDigit(c) || (lower >= 0x61 && lower <= 0x66);
}

/** A character that ends a reference's name: `\t \n \f`, space, `<`, `&`, `#`, `;`. */
function endsName(c: number): boolean {
  return c === 0x09 || c === 0x0a || c === 0x0c || c === 0x20 || c === 0x3c || c === 0x26 || c === 0x23 || c === 0x3b;
}

/**
 * The end of the character reference whose `&` is at `at`, or -1 when none starts there: what Python's
 * pattern `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` matches, read by hand (a regex
 * replace calls back into JS per match, 0.4 µs each: 80 ms for a megabyte of references).
 */
function referenceEnd(text: string, at: number): number {
  let i = at + 1;
  if (text.charCodeAt(i) === 0x23) {
    const hex = (text.charCodeAt(i + 1) | 0x20) === 0x78 && isHexDigit(text.charCodeAt(i + 2));
    const digits = hex ? i + 2 : i + 1;
    for (i = digits; hex ? isHexDigit(text.charCodeAt(i)) : isDigit(text.charCodeAt(i)); i++);
    if (i === digits) return -1; // "&#" with no digits: the name branch excludes '#'
  } else {
    let n = 0;
    for (; n < 32 && i < text.length && !endsName(text.charCodeAt(i)); n++) {
      const c = text.charCodeAt(i);
      const pair = c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      i += pair ? 2 : 1; // 32 code points, as the pattern's /u flag counts
    }
    if (n === 0) return -1;
  }
  return text.charCodeAt(i) === 0x3b ? i + 1 : i;
}

/** `text` with every character reference resolved, as Python's `html.unescape`. */
export function unescapeHtml(text: string): string {
  let at = text.indexOf('&');
  if (at < 0) return text;
  let out = '';
  let done = 0;
  for (; at >= 0; at = text.indexOf('&', at + 1)) {
    const end = referenceEnd(text, at);
    if (end < 0) continue;
    const reference = text.slice(at, end);
    const resolved = resolveEntity(reference, text.slice(at + 1, end));
    at = end - 1;
    if (resolved === reference) continue; // not a known name: the text stays
    out += text.slice(done, end - reference.length) + resolved;
    done = end;
  }
  return done === 0 ? text : out + text.slice(done); // the same string when nothing resolved: unescaping it again is a no-op
}

/** CLIP unescapes every caption twice ("&amp;amp;" is "&"). */
export function unescapeTwice(text: string): string {
  const once = unescapeHtml(text);
  return once === text ? once : unescapeHtml(once);
}

/**
 * The character references a Hugging Face tokenizer.json can spell out as regex replacements (its
 * format cannot unescape HTML), grouped by the character `unescapeHtml` makes of them: every name
 * the tables above know, and the numeric references (decimal or hex, any leading zeros, with or
 * without `;`) of ASCII, Latin-1, the Windows-1252 range and the named characters. Each pattern is
 * valid JS and Oniguruma, its alternatives longest first (a reference before its prefix). Replacing
 * group after group is one pass of `unescapeHtml` on such text, the group giving `&` last so that
 * no replacement forms a new reference.
 */
export function spelledReferences(): { pattern: string; character: string }[] {
  const groups = new Map<string, { names: string[]; numeric: string[] }>();
  const group = (character: string) =>
    groups.get(character) ?? groups.set(character, { names: [], numeric: [] }).get(character)!;
  for (const [name, ch] of NAMED) group(ch).names.push(`&${name};`);
  for (const [name, ch] of LEGACY) group(ch).names.push(`&${name}`);
  const codes = new Set<number>();
  for (let c = 0x20; c <= 0xff; c++) if (c !== 0x7f) codes.add(c);
  for (const ch of NAMED.values()) codes.add(ch.codePointAt(0)!);
  for (const c of codes) {
    const hex = [...c.toString(16)].map((d) => (/[a-f]/.test(d) ? `[${d}${d.toUpperCase()}]` : d)).join('');
    group(unescapeHtml(`&#${c};`)).numeric.push(`&#0*${c}(?![0-9]);?`, `&#[xX]0*${hex}(?![0-9a-fA-F]);?`);
  }
  return [...groups]
    .map(([character, g]) => ({
      character,
      pattern: [...g.names.sort((a, b) => b.length - a.length), ...g.numeric].join('|'),
    }))
    .sort((a, b) => Number(a.character === '&') - Number(b.character === '&'));
}
