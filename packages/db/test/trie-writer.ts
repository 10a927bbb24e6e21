// Child process for the state trie crash test (run with `node --import tsx`):
//   trie-writer.ts <dir>   open <dir>, reopen the state trie at the head and keep committing
//                          blocks whose state writes are trieWritesAt(h), printing each height
import { writeSync } from 'node:fs';
import { ChainStore } from '@qnexus/db';
import { WorldState, changesOf } from '@qnexus/state';
import { commitFor, trieWritesAt } from './fixture.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: trie-writer.ts <dir>');
const say = (s: string) => writeSync(1, s + '\n');

const store = await ChainStore.open(dir);
const head = await store.headHeight();
const state = WorldState.open(store.stateReads(), head, { nodeCacheBytes: 256 * 1024, valueCacheBytes: 64 * 1024 });
say(`ready ${head + 1}`);
for (let h = head + 1; h < head + 100_000; h++) {
  const u = state.apply(changesOf(trieWritesAt(h)), h);
  await store.commitBlock({ ...commitFor(h), writes: u.writes, trie: u.trie });
  state.flushed(u);
  say(`committed ${h}`);
}
await store.close();
