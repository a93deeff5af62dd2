/**
 * The text side of the lexical embedder: words, stop words, a light suffix stemmer and
 * character n-grams. Kept apart from the hashing so each can be read and tested on its own.
 */

/** Function words that say nothing about a memory's topic. */
const STOP_WORDS = new Set(
  `a about above after again against all am an and any are as at be because been before being below between both but by
  can could did do does doing down during each few for from further had has have having he her here hers herself him
  himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or other
  our ours ourselves out over own same she should so some such than that the their theirs them themselves then there
  these they this those through to too under until up very was we were what when where which while who whom why will
  with would you your yours yourself yourselves im ive id dont doesnt didnt cant wont isnt arent wasnt also get got
  tell told say said know let lets please thing things something anything one us shall may might must
  whats hows wheres whos thats theres`.split(/\s+/),
);

/** Lower case, accents removed, split on anything that is not a letter or a digit. */
export function words(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
}

export function isStopWord(word: string): boolean {
  return STOP_WORDS.has(word);
}

// Longest first; each rule keeps a stem of at least three letters.
const SUFFIXES: [suffix: string, replacement: string][] = [
  ['ational', 'ate'],
  ['ization', 'ize'],
  ['fulness', 'ful'],
  ['iveness', 'ive'],
  ['ements', ''],
  ['ement', ''],
  ['ments', ''],
  ['ment', ''],
  ['ness', ''],
  ['ings', ''],
  ['ing', ''],
  ['ies', 'y'],
  ['ied', 'y'],
  ['ed', ''],
  ['ly', ''],
  ['es', ''],
  ['s', ''],
];

/**
 * A deliberately light stemmer: strips common English inflections so that "preferences",
 * "preferred" and "prefer" meet. Over-stemming is cheap here because n-grams carry the rest.
 */
export function stem(word: string): string {
  if (word.length <= 3 || /^\d+$/.test(word)) return word;
  for (const [suffix, replacement] of SUFFIXES) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) {
      if (suffix === 's' && (word.endsWith('ss') || word.endsWith('us') || word.endsWith('is'))) return word;
      let base = word.slice(0, word.length - suffix.length) + replacement;
      // "shipped" -> "shipp" -> "ship"
      if (replacement === '' && base.length > 3 && base.at(-1) === base.at(-2) && !/[lsz]/.test(base.at(-1)!)) base = base.slice(0, -1);
      return base;
    }
  }
  return word;
}

/** Character n-grams of a word with boundary marks: `#pay#` gives `#pa`, `pay`, `ay#` for n = 3. */
export function charNgrams(word: string, n: number): string[] {
  const marked = `#${word}#`;
  if (marked.length < n) return [];
  const grams: string[] = [];
  for (let i = 0; i + n <= marked.length; i++) grams.push(marked.slice(i, i + n));
  return grams;
}
