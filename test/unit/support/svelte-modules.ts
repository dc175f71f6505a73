// Import this before a renderer .svelte.ts module to run it in Node's test runner (see
// svelte-hooks.mjs); the module must then be imported dynamically, after this has run.
import { register } from 'node:module';

register('./svelte-hooks.mjs', import.meta.url);
