/**
 * Evaluation text as token windows. The text is raw bytes read with a byte-level tokenizer (token id =
 * byte value), the form `fixtures/trained/eval.bin` has; a `tokenizer.json` beside the file must say so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../errors.js';
import { rng } from '../verify/inputs.js';

export interface EvalText {
  tokens: Int32Array;
  /** where the tokens came from, for reports */
  source: string;
}

function checkTokenizer(textPath: string): void {
  const tokenizerPath = join(dirname(textPath), 'tokenizer.json');
  if (!existsSync(tokenizerPath)) return;
  let kind: unknown;
  try {
    kind = (JSON.parse(readFileSync(tokenizerPath, 'utf8')) as { kind?: unknown }).kind;
  } catch (err) {
    fail('usage', `${tokenizerPath}: not readable JSON (${err instanceof Error ? err.message : String(err)}).`, err);
  }
  if (kind !== 'bytes') fail('usage', `${tokenizerPath} says kind '${String(kind)}'; attnpass reads evaluation text with a byte-level tokenizer only (kind 'bytes'). Tokenize the text yourself and pass token windows to the library instead.`);
}

/** Reads a file of raw bytes as token ids; every byte must lie inside the vocabulary. */
export function loadEvalText(path: string, vocabSize = 256): EvalText {
  if (!existsSync(path)) fail('io', `evaluation text '${path}' does not exist; give a file of raw text bytes (e.g. fixtures/trained/eval.bin) with --text.`);
  checkTokenizer(path);
  const bytes = readFileSync(path);
  let outside = 0;
  for (const b of bytes) if (b >= vocabSize) outside++;
  if (outside > 0) {
    fail('usage', `${path}: ${outside} of ${bytes.length} bytes are ≥ the model's vocabulary size ${vocabSize}, so the text cannot be read byte by byte. Use a byte-level model (vocabulary 256) or ASCII text.`);
  }
  return { tokens: Int32Array.from(bytes), source: `${basename(path)} (${bytes.length} bytes)` };
}

/** Uniform random tokens: a stand-in text for models that learned nothing (the random-weight fixtures). */
export function randomText(vocabSize: number, length: number, seed = 1): EvalText {
  const random = rng(seed);
  return { tokens: Int32Array.from({ length }, () => Math.floor(random() * vocabSize)), source: `random tokens (vocab ${vocabSize}, seed ${seed})` };
}

/**
 * `count` non-overlapping windows of `seqLen` tokens, spread evenly over the text (the same text,
 * length and count always give the same windows).
 */
export function evalWindows(text: EvalText, seqLen: number, count: number): Int32Array[] {
  if (!Number.isInteger(seqLen) || seqLen < 2) fail('usage', `the window length must be an integer ≥ 2; got ${seqLen}.`);
  if (!Number.isInteger(count) || count < 1) fail('usage', `the number of windows must be an integer ≥ 1; got ${count}.`);
  const available = Math.floor(text.tokens.length / seqLen);
  if (count > available) {
    fail('usage', `${text.source} holds ${available} non-overlapping window(s) of ${seqLen} tokens; asked for ${count}. Ask for fewer windows or a shorter --seq-len.`);
  }
  return Array.from({ length: count }, (_, i) => {
    const slot = Math.floor((i * available) / count);
    return text.tokens.slice(slot * seqLen, (slot + 1) * seqLen);
  });
}
