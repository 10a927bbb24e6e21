#!/usr/bin/env node
import { run } from './program.js';

const code = await run(process.argv);
// Flush stdout/stderr, then exit explicitly: keep-alive sockets must not keep a finished command alive.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
