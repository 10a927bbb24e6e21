import { Type } from '@sinclair/typebox';
import { Hex, Nat, Nullable, Obj } from './route.js';

/** One proven state key: the value at the proof's height (null: proven absent) and the trie nodes from the root down. */
export const StateProofEntry = Obj(
  {
    key: Hex(undefined, 'The full state key: module id ‖ module key.'),
    value: Nullable(Hex(undefined, 'null: the key is proven absent.')),
    nodes: Type.Array(Hex(), { description: "Preimages of the trie's internal nodes from the root down to the key's (see ARCHITECTURE.md, the state trie)." }),
  },
  { title: 'StateProofEntry' },
);

/**
 * What `?proof=true` adds to an answer: the finalized header whose state root the entries are proven against,
 * its finality certificate, and one entry per state key the answer is derived from. A light client checks the
 * certificate with the committee of its round's epoch (genesis or the beacon's signed announcement,
 * `GET /v1/committees?epoch=…`), then each entry against `header.stateRoot`, then that the answer's fields
 * are what the proven values decode to.
 */
export const StateProof = Obj(
  {
    height: Nat('The block height the answer was read at (its state version).'),
    header: Hex(undefined, 'The encoded header of the block at that height.'),
    certificate: Hex(undefined, "The encoded finality certificate of that block."),
    entries: Type.Array(StateProofEntry),
  },
  { title: 'StateProof' },
);

/** The query parameters of a provable read (an account, a module query of single keys). */
export const PROOF_QUERY = {
  proof: 'true: add a state proof (`proof`) and read at one finalized height; false or absent: read the head, no proof.',
  height: 'With proof=true: the height to read and prove at (default: the finalized head); STATE_PRUNED when the node keeps it no longer.',
} as const;
