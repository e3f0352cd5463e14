/** The built-in passes, in the order `attnpass passes` lists them. */
import type { Pass } from '../src/pipeline/pass.js';
import { detectAttentionPass } from './detect-attention/index.js';
import { astPass } from './ast/index.js';
import { attPass } from './att/index.js';
import { spanPass } from './span/index.js';
import { windowPass } from './window/index.js';
import { cleanupPass } from './cleanup/index.js';

export const builtinPasses: Pass[] = [detectAttentionPass, attPass, astPass, spanPass, windowPass, cleanupPass];

/** The passes `convert --pass NAME` accepts as its main rewrite. */
export const REWRITE_PASSES = ['att', 'ast', 'span', 'window'] as const;
