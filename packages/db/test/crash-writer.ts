// Child process for the db crash-atomicity test (run with `node --import tsx`).
//   crash-writer.ts commit <dir>   open <dir>, continue committing fixture blocks
//                                  from head+1 forever, printing each committed height
//   crash-writer.ts open <dir>     try to open <dir> and print the outcome as JSON
import { ChainStore } from '@qnexus/db';
import { QnexusError } from '@qnexus/types';
import { writeSync } from 'node:fs';
import { commitFor } from './fixture.js';

const [mode, dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: crash-writer.ts commit|open <dir>');

// writeSync so a reported height has really left the process before the next commit starts
const say = (s: string) => writeSync(1, s + '\n');

if (mode === 'open') {
  try {
    const store = await ChainStore.open(dir);
    say(JSON.stringify({ ok: true }));
    await store.close();
  } catch (e) {
    say(JSON.stringify({ ok: false, qnexus: e instanceof QnexusError, code: (e as QnexusError).code, message: (e as Error).message }));
  }
} else {
  const store = await ChainStore.open(dir);
  let h = (await store.headHeight()) + 1;
  say(`ready ${h}`);
  const limit = h + 200_000;
  for (; h < limit; h++) {
    await store.commitBlock(commitFor(h));
    say(`committed ${h}`);
  }
  await store.close();
}
