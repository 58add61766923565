// One line per command; each module exports a yargs CommandModule named `command`.
import { command as build } from './build.js';
import { command as hash } from './hash.js';
import { command as layers } from './layers.js';
import { command as prefetch } from './prefetch.js';
import { command as pull } from './pull.js';
import { command as push } from './push.js';
import { command as stream } from './stream.js';

export const commands = [pull, push, prefetch, stream, layers, hash, build];
