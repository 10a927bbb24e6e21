import { InvalidArgumentError, Option, type Command } from 'commander';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { formatAddress, isAddressString, type UnlockedKey } from '@qnexus/crypto';
import {
  ApiError,
  QnexusClient,
  findTx,
  buildStake,
  buildTransfer,
  buildUnstake,
  buildXTransfer,
  signTx,
  type BeaconXTransferInfo,
  type BuiltTx,
  type TxInfo,
  type BeaconXferPhase,
  type ValidatorInfo,
  type XTransferInfo,
} from '@qnexus/sdk';
import { app } from '@qnexus/app';
import type { StateMachine } from '@qnexus/state';
import { CliError } from '../errors.js';
import { unlockKeystoreFile, readKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, type PassphraseOptions } from '../passphrase.js';
import { note, out, parseChainId, parseSeconds, parseU64, table } from '../util.js';
import { BEACON_NODE_OPTION_HELP, NODE_OPTION_HELP, findDevnet, resolveNode } from '../util.js';
import { keystoreOption, requireKeystore } from './keys.js';
import { ShardNodes, WaitProgress, manifestShardNodes, waitTxFinal, waitXTransferApplied, type WaitContext } from '../wait.js';

/** `--beacon` default: $QNEXUS_BEACON, else the local devnet's beacon (none: undefined). */
export async function defaultBeaconUrl(): Promise<string | undefined> {
  if (process.env.QNEXUS_BEACON) return process.env.QNEXUS_BEACON;
  try {
    return (await findDevnet())?.manifest.beacon.apiUrl;
  } catch {
    return undefined;
  }
}

interface TransferOpts extends PassphraseOptions {
  beacon?: string;
  keystore: string;
  to: string;
  amount: bigint;
  fee: bigint;
  nonce?: bigint;
  chainId?: string;
  node?: string;
  wait?: boolean;
  timeout: number;
  binary?: boolean;
  json?: boolean;
  checkNode?: string[];
}

function parseAddressArg(v: string): string {
  if (!isAddressString(v)) throw new InvalidArgumentError('expected qn followed by 40 lowercase hex characters.');
  return v;
}

function parseTxHash(v: string): string {
  const h = v.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(h)) throw new InvalidArgumentError('expected a transaction hash: 64 hex characters.');
  return h;
}

function parseXferId(v: string): string {
  const id = v.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidArgumentError('expected a transfer id: the 64-hex-character hash of its transaction.');
  return id;
}

/** The options `tx transfer` and `tx xtransfer` share. */
function valueTxOptions(cmd: Command, what: string, defaultTimeout: number, waitHelp: string): Command {
  cmd
    .addOption(keystoreOption('sender keystore'))
    .requiredOption('--to <address>', what, parseAddressArg)
    .requiredOption('--amount <n>', 'amount to send (integer base units)', parseU64)
    .addOption(new Option('--fee <n>', 'fee (genesis feeBurnBps of it burned, the rest to the proposer)').argParser(parseU64).default(1n, '1'))
    .option('--nonce <n>', "sender nonce (default: the node's pendingNonce for the sender)", parseU64)
    .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
    .option('--node <url>', `${NODE_OPTION_HELP}; a node of the sender's shard`)
    .option('--wait', waitHelp)
    .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, defaultTimeout)
    .option('--binary', 'submit as application/octet-stream instead of JSON')
    .option('--json', 'print the result as JSON');
  return addPassphraseOptions(checkNodeOption(cmd));
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), ...v.split(',').map((x) => x.trim()).filter((x) => x !== '')];
}

/** `--check-node`: more nodes of the shard asked by hash when a submission's outcome is unknown. */
function checkNodeOption(cmd: Command): Command {
  return cmd.option(
    '--check-node <url>',
    "another node of the sender's shard to ask for an earlier transaction's status by hash (repeatable or comma-separated); --node is always asked",
    collect,
  );
}

interface Signed {
  client: QnexusClient;
  key: UnlockedKey;
  chainId: string;
  nonce: bigint;
  /** Sign without the public key: the node reports it registered (the account's first transaction is final). */
  keyless: boolean;
  /** Every node asked by hash: --node first, then --check-node. */
  nodes: QnexusClient[];
  outbox: Outbox;
  /** Earlier submissions of this key whose outcome is still unknown (they may yet become final). */
  inDoubt: OutboxEntry[];
}

/** What `prepare` needs: where to send, who signs, and optional chain id and nonce overrides. */
type SignerOpts = PassphraseOptions & { node?: string; keystore: string; chainId?: string; nonce?: bigint; checkNode?: string[] };

/**
 * Unlock the key and choose the nonce. Without --nonce: the node's pendingNonce, but never the
 * nonce of an earlier submission of this key that the node does not know yet is pending
 * elsewhere (`resolveOutbox`).
 */
async function prepare(o: SignerOpts): Promise<Signed> {
  // Read first (a bad file fails before the passphrase is asked): its address picks a node of its home shard.
  const target = await resolveNode(o, { address: (await readKeystoreFile(requireKeystore(o))).address });
  const client = new QnexusClient(target.url);
  // Asked by hash (an earlier submission's fate) and followed by --wait: --check-node, and the local devnet's other nodes of the shard.
  const more = [...new Set([...(o.checkNode ?? []), ...target.others])].filter((u) => u !== client.baseUrl);
  const nodes = [client, ...more.map((u) => new QnexusClient(u, { timeoutMs: 5000 }))];
  const { key } = await unlockKeystoreFile(o.keystore, await getPassphrase(o, { what: `passphrase for ${o.keystore}`, keystore: o.keystore }));
  const chainId = o.chainId ?? (await client.status()).chainId;
  const account = await client.account(formatAddress(key.address));
  const outbox = new Outbox(`${o.keystore}.pending.json`);
  const { inDoubt, pendingThrough } = await resolveOutbox(outbox, nodes, BigInt(account.nonce));
  let nonce = o.nonce ?? BigInt(account.pendingNonce);
  // A node that has not seen an earlier pending transaction yet (not gossiped here) would hand out its nonce again.
  if (o.nonce === undefined && pendingThrough !== null && nonce <= pendingThrough) nonce = pendingThrough + 1n;
  return { client, key, chainId, nonce, keyless: account.publicKey !== null, nodes, outbox, inDoubt };
}

/** Submit; an API error whose cure is the other transaction kind says so. */
async function submit(s: Signed, built: BuiltTx, o: { binary?: boolean }): Promise<string> {
  const nonce = s.nonce;
  const doubt = s.inDoubt.find((d) => BigInt(d.nonce) === nonce);
  if (doubt !== undefined && doubt.hash !== built.hash) {
    throw new CliError(
      'NONCE_IN_DOUBT',
      `an earlier transaction ${doubt.hash} with nonce ${nonce} was submitted to ${doubt.node} at ${doubt.at} and its outcome is unknown: ` +
        `no node asked (${s.nodes.map((n) => n.baseUrl).join(', ')}) knows it, but the node that took it may still have it and gossip it later.\n` +
        'hint: re-run the same command to resubmit that transaction, ask more nodes with --check-node <url>, ' +
        `or sign this one with --nonce ${nonce} to replace it deliberately (only one of the two can become final)`,
    );
  }
  // Recorded before it is sent: if the answer is lost, the next command for this key knows the nonce may be taken.
  await s.outbox.add({ hash: built.hash, nonce: nonce.toString(), node: s.client.baseUrl, at: new Date().toISOString() });
  try {
    const r = await submitResolvingUnknown(s, built, o);
    if (r !== built.hash) note(`warning: the node reports hash ${r}, locally computed ${built.hash}`);
    return built.hash;
  } catch (e) {
    // A refusal is an answer: the transaction is not pending anywhere because of this submission.
    // (UNAVAILABLE from the node itself is no refusal: it may hold the transaction without having made it durable.)
    if (e instanceof ApiError && e.status >= 400 && e.code !== 'UNAVAILABLE') await s.outbox.remove(built.hash);
    if (e instanceof ApiError) {
      const hint = SUBMIT_HINTS[e.code];
      // Only when the node's own message does not already say it.
      if (hint !== undefined && !e.message.includes(hint.unless)) throw new CliError(e.code, `${e.message}\nhint: ${hint.text}`);
    }
    throw e;
  }
}

/** Resubmissions of the same bytes after a lost answer, before giving up with TX_OUTCOME_UNKNOWN. */
const UNKNOWN_OUTCOME_ATTEMPTS = 3;

/**
 * Submit; when the answer is lost (timeout, connection reset: `UNAVAILABLE`) the node may have
 * admitted it. Ask the nodes by hash: known → it was admitted; unknown → send the same signed
 * bytes again (never a new signature with the same nonce). Returns the hash.
 */
async function submitResolvingUnknown(s: Signed, built: BuiltTx, o: { binary?: boolean }): Promise<string> {
  let lost: ApiError | null = null;
  for (let attempt = 1; attempt <= UNKNOWN_OUTCOME_ATTEMPTS; attempt++) {
    try {
      return (await s.client.submitTx(built.raw, { binary: o.binary ?? false })).hash;
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 'UNAVAILABLE') throw e;
      lost = e;
    }
    let found = null;
    try {
      found = await findTx(s.nodes, built.hash);
    } catch {
      // no node answered either: resubmit below
    }
    if (found !== null && found.tx.status !== 'rejected') {
      note(`the answer to the submission was lost (${lost.message}); ${found.node} reports transaction ${built.hash} ${found.tx.status}`);
      return built.hash;
    }
    note(`the answer to the submission was lost (${lost.message}); no node knows transaction ${built.hash}: resubmitting the same signed bytes`);
    await new Promise((r) => setTimeout(r, 250 * attempt));
  }
  throw new CliError(
    'TX_OUTCOME_UNKNOWN',
    `no answer from ${s.client.baseUrl} for transaction ${built.hash} (nonce ${s.nonce}) after ${UNKNOWN_OUTCOME_ATTEMPTS} attempts (${lost?.message ?? 'no answer'}); ` +
      `it may have been admitted. It is recorded in ${s.outbox.path}: the next command for this key asks the nodes about it before using nonce ${s.nonce} again.\n` +
      `hint: check it with \`qnexus tx status ${built.hash} --node <url>\`, or re-run the same command to resubmit it`,
  );
}

// ---------------------------------------------------------------- outbox: submissions not yet known final

/** A submission of this key not yet seen final or refused. */
interface OutboxEntry {
  hash: string;
  nonce: string;
  /** The node it was sent to. */
  node: string;
  at: string;
}

/** Most entries kept (the oldest go first): a key rarely has more unresolved submissions than the mempool's nonce window. */
const OUTBOX_MAX = 256;

/**
 * `<keystore>.pending.json`: this key's submissions whose outcome the CLI has not seen yet.
 * Written before each submission, cleared once the transaction is final or refused, so a
 * command whose answer was lost (or a re-run after it) never signs a different transaction
 * with a nonce that may still be taken. Unwritable (a read-only keystore directory): a note,
 * and the command goes on without it.
 */
class Outbox {
  private warned = false;
  constructor(readonly path: string) {}

  async read(): Promise<OutboxEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return [];
    }
    try {
      const j = JSON.parse(text) as { pending?: unknown };
      if (!Array.isArray(j.pending)) return [];
      return j.pending.filter(
        (e): e is OutboxEntry =>
          typeof e === 'object' && e !== null && /^[0-9a-f]{64}$/.test(String((e as OutboxEntry).hash)) && /^[0-9]{1,20}$/.test(String((e as OutboxEntry).nonce)),
      );
    } catch {
      note(`warning: ${this.path} is not valid JSON; ignoring it`);
      return [];
    }
  }

  async write(entries: readonly OutboxEntry[]): Promise<void> {
    try {
      if (entries.length === 0) {
        await rm(this.path, { force: true });
        return;
      }
      const tmp = `${this.path}.tmp`;
      await writeFile(tmp, JSON.stringify({ version: 1, pending: entries.slice(-OUTBOX_MAX) }, null, 2) + '\n', { mode: 0o600 });
      await rename(tmp, this.path);
    } catch (e) {
      if (!this.warned) note(`warning: cannot record submissions in ${this.path} (${(e as Error).message}); a lost answer will not be remembered by the next command`);
      this.warned = true;
    }
  }

  async add(e: OutboxEntry): Promise<void> {
    const all = (await this.read()).filter((x) => x.hash !== e.hash);
    await this.write([...all, e]);
  }

  async remove(hash: string): Promise<void> {
    const all = await this.read();
    if (all.some((x) => x.hash === hash)) await this.write(all.filter((x) => x.hash !== hash));
  }
}

/**
 * Ask the nodes about every recorded submission of this key: final or refused → forgotten;
 * pending somewhere → its nonce is taken (`pendingThrough`: the highest such nonce); unknown
 * everywhere but its nonce not used yet → in doubt (it may still surface: the node that took it
 * may be down, or not have gossiped it); its nonce used by something final → forgotten.
 */
async function resolveOutbox(outbox: Outbox, nodes: readonly QnexusClient[], accountNonce: bigint): Promise<{ inDoubt: OutboxEntry[]; pendingThrough: bigint | null }> {
  const entries = await outbox.read();
  if (entries.length === 0) return { inDoubt: [], pendingThrough: null };
  const keep: OutboxEntry[] = [];
  const inDoubt: OutboxEntry[] = [];
  let pendingThrough: bigint | null = null;
  for (const e of entries) {
    const nonce = BigInt(e.nonce);
    let status: string | null;
    try {
      status = (await findTx(nodes, e.hash))?.tx.status ?? null;
    } catch {
      status = 'unreachable';
    }
    if (status === 'final' || status === 'rejected') continue;
    if (status === 'pending' || status === 'included') {
      keep.push(e);
      if (pendingThrough === null || nonce > pendingThrough) pendingThrough = nonce;
      continue;
    }
    if (nonce < accountNonce) continue; // its nonce went to a final transaction: this one can never apply
    keep.push(e);
    inDoubt.push(e);
    note(`note: earlier transaction ${e.hash} (nonce ${e.nonce}, sent to ${e.node} at ${e.at}) is ${status === null ? 'unknown to the nodes asked' : 'unconfirmed: no node answered'}; its nonce is not reused`);
  }
  if (keep.length !== entries.length) await outbox.write(keep);
  return { inDoubt, pendingThrough };
}

/**
 * Submit and print what was sent (`label`: "hash" for a transfer, "id" for a cross-shard
 * transfer). Without --wait it prints the pending status and returns null.
 */
async function submitAndPrint(
  s: Signed,
  built: BuiltTx,
  o: TransferOpts,
  label: 'hash' | 'id',
): Promise<{ id: string; summary: Record<string, string> } | null> {
  const id = await submit(s, built, o);
  const summary = { [label]: id, from: built.from, to: o.to, amount: o.amount.toString(), fee: o.fee.toString(), nonce: s.nonce.toString(), chainId: s.chainId };
  if (!o.json) {
    out(`${label.padEnd(8)}${id}`);
    out(`from    ${built.from} (nonce ${s.nonce})`);
    out(`to      ${o.to}`);
    out(`amount  ${o.amount} (fee ${o.fee})`);
  }
  if (o.wait) return { id, summary };
  if (o.json) out(JSON.stringify({ ...summary, status: 'pending' }));
  else out('status  pending');
  return null;
}

/** What to do about a refused submission, for codes whose cure is another command or node. */
const SUBMIT_HINTS: Record<string, { text: string; unless: string }> = {
  TX_CROSS_SHARD: { text: 'the recipient lives on another shard; send it with `qnexus tx xtransfer` (same options)', unless: 'xtransfer' },
  TX_SAME_SHARD: { text: "the recipient lives on the sender's shard; send it with `qnexus tx transfer` (same options)", unless: 'tx transfer' },
  TX_WRONG_SHARD: { text: "submit to a node of the sender's home shard (--node); `qnexus status --node URL` shows a node's shard", unless: '--node' },
};

/**
 * --wait: the nodes to follow the transaction on (--node, then --check-node, then the devnet
 * manifest's other nodes of the shard, so that a node that dies is not the end of the wait),
 * progress on stderr, and the deadline of the whole wait.
 */
async function waitContext(s: Signed, timeoutS: number): Promise<WaitContext> {
  let others: string[] = s.nodes.slice(1).map((n) => n.baseUrl);
  try {
    const st = await s.client.status();
    others = [...others, ...(await manifestShardNodes(st.genesisHash, st.shard))];
  } catch {
    // The node may already be gone: --check-node nodes are still there to ask.
  }
  const startedAt = Date.now();
  return { nodes: new ShardNodes(s.client, others), progress: new WaitProgress(), startedAt, deadline: startedAt + Math.round(timeoutS * 1000) };
}

/** --wait: until final (on any node of the shard); the outbox forgets it once final or refused (TX_REJECTED). */
async function waitFinal(s: Signed, hash: string, w: WaitContext): Promise<TxInfo> {
  try {
    const info = await waitTxFinal(w, hash);
    await s.outbox.remove(hash);
    return info;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'TX_REJECTED') await s.outbox.remove(hash);
    throw e;
  } finally {
    w.progress.done();
  }
}

/** --wait, cross-shard: until the shard has applied the beacon's decision (same nodes and deadline). */
/** Whether the final transaction `id` opened a cross-shard record (its source record is in the state). */
async function opensRecord(client: QnexusClient, id: string): Promise<boolean> {
  try {
    await client.xtransfer(id);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.code === 'XS_UNKNOWN_TRANSFER') return false;
    throw e;
  }
}

async function waitApplied(w: WaitContext, id: string): Promise<XTransferInfo> {
  try {
    return await waitXTransferApplied(w, id);
  } finally {
    w.progress.done();
  }
}

function txLine(info: TxInfo): string {
  return `${info.status}${info.block ? ` in block ${info.block.height} (${info.block.hash}, index ${info.block.index})` : ''}`;
}

/** Why a transfer was aborted or refused, from its phases. */
export function xferReason(x: { phases: readonly BeaconXferPhase[] }): string | null {
  for (let i = x.phases.length - 1; i >= 0; i--) {
    const r = x.phases[i]!.reason;
    if (r !== undefined && r !== null && r !== '') return r;
  }
  return null;
}

/**
 * Why an aborted operation was aborted: the source record's reason, else the beacon's (which
 * logged the decision and knows it), asked at `beaconUrl` when there is one. Null when neither says.
 */
async function abortReason(x: { phases: readonly BeaconXferPhase[] }, id: string, beaconUrl: string | undefined): Promise<string | null> {
  const reason = xferReason(x);
  if (reason !== null || beaconUrl === undefined) return reason;
  try {
    return xferReason(await new QnexusClient(beaconUrl, { timeoutMs: 5000 }).beaconXTransfer(id));
  } catch (e) {
    note(`(could not ask the beacon at ${beaconUrl} why: ${(e as Error).message})`);
    return null;
  }
}

/** Print what was submitted; without --wait that is all (true: the command is done). */
function printSubmitted(summary: Record<string, string>, o: { json?: boolean; wait?: boolean }, pad: number): boolean {
  if (!o.json) for (const [k, v] of Object.entries(summary)) if (k !== 'chainId') out(`${k.padEnd(pad)}${v}`);
  if (o.wait) return false;
  if (o.json) out(JSON.stringify({ ...summary, status: 'pending' }));
  else out(`${'status'.padEnd(pad)}pending`);
  return true;
}

function isBeaconRecord(x: XTransferInfo | BeaconXTransferInfo): x is BeaconXTransferInfo {
  return typeof (x as { done?: unknown }).done === 'boolean';
}

/** A cross-shard transfer record (from a shard node or the beacon) as text lines. */
export function formatXTransfer(x: XTransferInfo | BeaconXTransferInfo): string[] {
  const lines = table([
    ['id', x.id],
    ['from', `${x.from} (shard ${x.sourceShard})`],
    ['to', `${x.to} (shard ${x.destinationShard})`],
    ['amount', x.amount],
    ['deadline', x.deadlineSlot === null ? '(set when the transaction is in a block)' : `slot ${x.deadlineSlot}`],
    ['view', isBeaconRecord(x) ? `beacon${x.done ? ' (applied on both shards)' : ''}` : `${x.role} shard`],
  ]);
  if (x.phases.length > 0) {
    lines.push('phases');
    const rows = (x.phases as readonly BeaconXferPhase[]).map((p) => [
      p.phase,
      p.shard !== undefined ? `shard ${p.shard}` : 'beacon',
      p.height !== undefined ? `height ${p.height}` : p.slot !== undefined ? `slot ${p.slot}` : '',
      [p.decision ?? '', p.reason ?? ''].filter((s) => s !== '').join(': '),
    ]);
    lines.push(...table(rows, '  ').map((l) => l.trimEnd()));
  }
  const reason = x.status === 'aborted' || x.status === 'refused' ? xferReason(x) : null;
  lines.push(...table([['status', `${x.status}${reason ? ` (${reason})` : ''}`]]));
  return lines;
}

export function txCommand(parent: Command): Command {
  const tx = parent
    .command('tx')
    .description('build, sign and submit transactions: transfer, xtransfer, stake, unstake, or any module\'s message (tx <module> <msg> --arg value …)')
    .option('--module <file.js>', 'also load this app module (as the nodes do with --module), so its messages are commands here; repeatable');

  const transfer = tx.command('transfer').description("sign a transfer to an account of the sender's shard, submit it and print its hash (--wait: until final)");
  valueTxOptions(transfer, "recipient address (qn + 40 hex) on the sender's shard", 60, 'wait until the transaction is final and print its block')
    .addHelpText(
      'after',
      '\nAPI errors are printed with their code (e.g. TX_NONCE_STALE, TX_INSUFFICIENT_FUNDS) and exit 1. A recipient on\n' +
        'another shard is refused (TX_CROSS_SHARD): use `qnexus tx xtransfer`.\n' +
        'Example (with `npm run devnet` running, its node of the sender\'s shard and its passphrase are found):\n' +
        '  npx qnexus tx transfer --keystore devnet/data/keys/s0-account-0.json --to qn… --amount 1000 --wait',
    )
    .action(async (o: TransferOpts) => {
      const s = await prepare(o);
      const built = buildTransfer({ key: s.key, chainId: s.chainId, to: o.to, amount: o.amount, fee: o.fee, nonce: s.nonce, keyless: s.keyless });
      const sent = await submitAndPrint(s, built, o, 'hash');
      if (!sent) return;
      const { id: hash, summary } = sent;
      const info: TxInfo = await waitFinal(s, hash, await waitContext(s, o.timeout));
      if (o.json) out(JSON.stringify({ ...summary, status: info.status, block: info.block }));
      else out(`status  ${txLine(info)}`);
    });

  const xtransfer = tx
    .command('xtransfer')
    .description('sign a cross-shard transfer to an account of another shard, submit it to a node of the sender’s shard and print its id (--wait: until committed or aborted)');
  valueTxOptions(
    xtransfer,
    "recipient address (qn + 40 hex) whose home shard is not the sender's",
    120,
    "wait until the transaction is final and the beacon's decision is applied on the sender's shard; exit 1 if it was aborted",
  )
    .option('--beacon <url>', "the beacon's HTTP API, asked why a transfer was aborted with --wait (default: $QNEXUS_BEACON, else the local devnet's beacon)")
    .addHelpText(
      'after',
      `
The sender's shard charges the fee (genesis feeBurnBps of it burned, the rest to the proposer)
and holds the amount in escrow; the beacon asks the recipient's shard to prepare, then logs
commit (the amount is credited there) or abort (it is refunded). The deadline rule: the transfer
commits if and only if the recipient's shard finalizes its prepare at a slot <= the deadline
(block slot + genesis xferTimeoutSlots); once the deadline has passed the outcome is fixed.
The id is the transaction hash: GET /v1/xtransfers/{id} on either shard's nodes or on the
beacon (qnexus tx xstatus <id>). --wait prints the phases and exits 0 when committed,
1 (XFER_ABORTED, with the beacon's reason) when aborted, 3 on timeout.
A recipient on the sender's own shard is refused (TX_SAME_SHARD): use tx transfer.
Example:
  npx qnexus tx xtransfer --keystore devnet/data/keys/s0-account-0.json --to <an s1 account> --amount 1000 --wait`,
    )
    .action(async (o: TransferOpts) => {
      const s = await prepare(o);
      const built = buildXTransfer({ key: s.key, chainId: s.chainId, to: o.to, amount: o.amount, fee: o.fee, nonce: s.nonce, keyless: s.keyless });
      const sent = await submitAndPrint(s, built, o, 'id');
      if (!sent) return;
      const { id, summary } = sent;
      const w = await waitContext(s, o.timeout);
      const info = await waitFinal(s, id, w);
      if (!o.json) out(`tx      ${txLine(info)}`);
      const x = await waitApplied(w, id);
      if (o.json) out(JSON.stringify({ ...summary, status: x.status, decision: x.decision, block: info.block, xtransfer: x }));
      else {
        const lines = formatXTransfer(x);
        const at = lines.findIndex((l) => l.startsWith('phases'));
        for (const line of at >= 0 ? lines.slice(at) : lines.slice(-1)) out(line);
      }
      if (x.status === 'aborted') {
        // The source shard records only the outcome; the beacon knows why.
        const beaconUrl = o.beacon ?? (await defaultBeaconUrl());
        const reason = await abortReason(x, id, beaconUrl);
        const why = reason ?? (beaconUrl === undefined ? 'reason unknown here (pass --beacon <url> to ask the beacon)' : 'no reason given');
        throw new CliError('XFER_ABORTED', `cross-shard transfer ${id} was aborted: ${why} (the amount was refunded to ${built.from})`);
      }
    });

  stakeCommands(tx);
  moduleTxCommands(tx, app);

  tx.command('status')
    .description('ask nodes of a shard for a transaction by hash: final, included, pending, rejected, or unknown to every node asked')
    .argument('<hash>', 'transaction hash (64 hex characters)', parseTxHash)
    .option('--node <url>', `${NODE_OPTION_HELP}; a node of the sender's shard`)
    .option('--check-node <url>', 'more nodes of the shard to ask (repeatable or comma-separated)', collect)
    .option('--json', 'print the most advanced answer as JSON')
    .addHelpText(
      'after',
      '\nA node answers for itself: a transaction acknowledged by another node may not have been gossiped to it yet.\n' +
        'Exits 0 when a node knows it, 1 (TX_UNKNOWN) when none of the nodes asked does, 1 (UNAVAILABLE) when none answered.',
    )
    .action(async (hash: string, o: { node?: string; checkNode?: string[]; json?: boolean }) => {
      const t = await resolveNode(o, { role: 'any' });
      // Without --node or $QNEXUS_NODE every node of the local devnet is asked: a hash does not tell its shard.
      const nodes = [t.url, ...(t.source === 'devnet' ? t.others : []), ...(o.checkNode ?? [])];
      const found = await findTx(nodes, hash, { timeoutMs: 5000 });
      if (found === null) throw new CliError('TX_UNKNOWN', `transaction ${hash} is not known to ${nodes.join(', ')}: not admitted, or not gossiped there yet`);
      if (o.json) out(JSON.stringify({ ...found.tx, node: found.node }, null, 2));
      else {
        for (const line of table([['hash', hash], ['status', txLine(found.tx)], ['node', found.node]])) out(line);
        if (found.tx.error) out(`error   ${found.tx.error.code}: ${found.tx.error.message}`);
      }
    });

  tx.command('xstatus')
    .description('show a cross-shard transfer as a shard node or the beacon records it')
    .argument('<id>', 'transfer id (the hash of its xtransfer transaction)', parseXferId)
    .option('--node <url>', `${BEACON_NODE_OPTION_HELP}; a node of either shard, or the beacon`)
    .option('--json', 'print the raw answer')
    .action(async (id: string, o: { node?: string; json?: boolean }) => {
      // The beacon (by default, with a local devnet) records every transfer; a shard node only its own shard's.
      const client = new QnexusClient((await resolveNode(o, { role: 'beacon' })).url);
      const x = await client.xtransfer(id);
      if (o.json) out(JSON.stringify(x, null, 2));
      else for (const line of formatXTransfer(x)) out(line);
    });
  return tx;
}

interface StakeOpts extends PassphraseOptions {
  keystore: string;
  validatorKeystore?: string;
  validator?: string;
  amount?: bigint;
  fee: bigint;
  nonce?: bigint;
  chainId?: string;
  node?: string;
  beacon?: string;
  wait?: boolean;
  timeout: number;
  json?: boolean;
  checkNode?: string[];
}

/** The options `tx stake` and `tx unstake` share. */
function stakingOptions(cmd: Command): Command {
  cmd
    .addOption(new Option('--fee <n>', 'fee (genesis feeBurnBps of it burned, the rest to the proposer)').argParser(parseU64).default(1n, '1'))
    .option('--nonce <n>', "signer nonce (default: the node's pendingNonce for the signer)", parseU64)
    .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
    .option('--node <url>', `${NODE_OPTION_HELP}; a node of the signer's home shard`)
    .option('--beacon <url>', "the beacon's HTTP API, asked why a request was refused with --wait (default: $QNEXUS_BEACON, else the local devnet's beacon)")
    .option('--wait', 'wait until the transaction is final and the beacon has decided; exit 1 if it refused')
    .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, 120)
    .option('--json', 'print the result as JSON');
  return addPassphraseOptions(checkNodeOption(cmd));
}

/**
 * Submit a staking transaction and, with --wait, follow it until the beacon's
 * decision is applied on the signer's shard (the same 2PC path as a cross-shard
 * transfer, with the beacon as the other side).
 */
async function submitStaking(s: Signed, built: BuiltTx, o: StakeOpts, what: string, fields: Record<string, string>): Promise<void> {
  const id = await submit(s, built, {});
  const summary: Record<string, string> = { id, from: built.from, ...fields, fee: o.fee.toString(), nonce: s.nonce.toString(), chainId: s.chainId };
  if (printSubmitted(summary, o, 10)) return;
  const w = await waitContext(s, o.timeout);
  const info = await waitFinal(s, id, w);
  if (!o.json) out(`${'tx'.padEnd(10)}${txLine(info)}`);
  const x = await waitApplied(w, id);
  const validator = fields.validator!;
  const beaconUrl = o.beacon ?? (await defaultBeaconUrl());
  // The beacon's registry is current; a node shows the beacon's last snapshot (up to 4 slots old).
  let v: ValidatorInfo | null = null;
  try {
    v = await (beaconUrl !== undefined ? new QnexusClient(beaconUrl, { timeoutMs: 5000 }) : s.client).validator(validator);
  } catch {
    // Not in the registry (refused) or not in the node's snapshot yet: the hint below says where to look.
  }
  if (o.json) out(JSON.stringify({ ...summary, status: x.status, block: info.block, validatorInfo: v }));
  else {
    out(`${'beacon'.padEnd(10)}${x.status === 'committed' ? `accepted the ${what}` : 'refused'}`);
    if (v !== null) {
      for (const line of formatValidator(v)) out(line);
      if (beaconUrl === undefined) note('(as of the node\'s latest registry snapshot from the beacon; pass --beacon <url> for the current one)');
    }
    if (x.status === 'committed') note(`follow it with: qnexus validators ${validator} --node <beacon or node URL>`);
  }
  if (x.status === 'aborted') {
    const reason = await abortReason(x, id, beaconUrl);
    throw new CliError(reason ?? 'STAKE_REFUSED', `the beacon refused the ${what}${reason ? ` (${reason})` : beaconUrl === undefined ? ' (pass --beacon <url> to see why)' : ''}`);
  }
}

/** A validator record as text lines. */
export function formatValidator(v: ValidatorInfo): string[] {
  // A node without a beacon snapshot yet knows only the committees: the registry's fields are null ('-').
  const ep = (n: number | null) => (n === null ? '-' : String(n));
  const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);
  const or = (s: string | null) => s ?? '-';
  const p = v.participation;
  const l = v.lifetime;
  return table([
    ['validator', v.address],
    ['home', or(v.home)],
    ['status', v.status],
    ['shard', v.shard === null ? '-' : String(v.shard)],
    ['stake', v.stake],
    ['rewards', or(v.rewards)],
    ['slashed', or(v.slashed)],
    ['epochs', `activation ${ep(v.activationEpoch)}, exit ${ep(v.exitEpoch)}, withdrawable ${ep(v.withdrawableEpoch)}`],
    ['votes', p && l ? `epoch ${ep(p.epoch)}: ${p.signed}/${p.blocks} (${pct(p.rate)}); lifetime ${l.signed}/${l.blocks} (${pct(l.rate)})` : '- (no beacon snapshot yet)'],
  ]);
}

function stakeCommands(tx: Command): void {
  const stake = tx
    .command('stake')
    .description('bond QFC from a funding account to a validator key; the beacon activates it at an epoch boundary')
    .addOption(keystoreOption('funding ("home") account keystore: pays amount + fee, receives the stake back after unbonding'))
    .option('--validator-keystore <file>', 'the validator key that will propose and vote (default: the --keystore key); it signs its consent')
    .requiredOption('--amount <n>', 'amount to bond (integer base units, at least genesis staking.minStake)', parseU64);
  stakingOptions(stake)
    .addHelpText(
      'after',
      `
The stake leaves the funding account's shard in escrow and reaches the beacon through the
same proven path as a cross-shard transfer. The beacon registers the validator (pending),
activates it when it freezes the next epoch's committees (at most genesis churnLimit per
epoch; the rest queue) and assigns it to a shard. Start the validator before or after:
  qnexus node --shard <k> --validator <validator keystore> …
It votes once active and tells you if the beacon put it on another shard.
--wait exits 0 once the beacon accepted the stake, 1 if it refused (e.g. STAKE_NOT_OWNER).
Example:
  npx qnexus tx stake --keystore devnet/data/keys/s0-account-0.json --validator-keystore my-validator.json \
    --amount 5000 --wait`,
    )
    .action(async (o: StakeOpts) => {
      const s = await prepare(o);
      let validatorKey = s.key;
      if (o.validatorKeystore !== undefined && o.validatorKeystore !== o.keystore) {
        await readKeystoreFile(o.validatorKeystore);
        validatorKey = (await unlockKeystoreFile(o.validatorKeystore, await getPassphrase(o, { what: `passphrase for ${o.validatorKeystore}` }))).key;
      }
      const built = buildStake({ key: s.key, validatorKey, chainId: s.chainId, amount: o.amount!, fee: o.fee, nonce: s.nonce, keyless: s.keyless });
      await submitStaking(s, built, o, 'stake', { validator: formatAddress(validatorKey.address), amount: o.amount!.toString() });
    });

  const unstake = tx
    .command('unstake')
    .description('take a validator out of the committees; its stake and rewards return home after the unbonding period')
    .addOption(keystoreOption("signer: the validator's home (funding) account, or the validator key itself"))
    .option('--validator <address>', 'the validator (default: the --keystore key\'s own address)', parseAddressArg);
  stakingOptions(unstake)
    .addHelpText(
      'after',
      `
The beacon takes the validator out at the first epoch it has not frozen yet (churn limit
permitting), then waits genesis unbondingEpochs before paying stake + rewards back to the
home account; until then the stake can still be slashed. Watch it with
  qnexus validators <address> --node <url>`,
    )
    .action(async (o: StakeOpts) => {
      const s = await prepare(o);
      const validator = o.validator ?? formatAddress(s.key.address);
      const built = buildUnstake({ key: s.key, chainId: s.chainId, validator, fee: o.fee, nonce: s.nonce, keyless: s.keyless });
      await submitStaking(s, built, o, 'unstake', { validator });
    });
}

// ---------------------------------------------------------------- generic: qnexus tx <module> <msg>

/** Subcommands of `tx` that are not modules (a module of one of these names gets no generic command). */
const TX_BUILTIN_SUBCOMMANDS = new Set(['transfer', 'xtransfer', 'stake', 'unstake', 'status', 'xstatus', 'help']);

interface ModuleTxOpts extends PassphraseOptions {
  keystore: string;
  fee: bigint;
  nonce?: bigint;
  chainId?: string;
  node?: string;
  beacon?: string;
  wait?: boolean;
  timeout: number;
  binary?: boolean;
  json?: boolean;
  checkNode?: string[];
  [arg: string]: unknown;
}

/** `--to` → `to`, `--max-price` → `maxPrice`: commander's attribute name of an argument's option. */
const attrOf = (name: string) => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * The named string arguments of a message from the parsed options; a missing required one is a usage
 * error (exit 2). The message itself is then built by the module's client side, which throws its
 * typed error (TX_BAD_AMOUNT, TX_MALFORMED, a module code) before any key is unlocked or node asked.
 */
export function moduleMsgArgs(args: readonly { name: string; optional?: boolean }[], o: Record<string, unknown>, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of args) {
    const v = o[attrOf(a.name)];
    if (v === undefined) {
      if (!a.optional) throw new CliError('USAGE', `${what}: missing --${a.name}`, 2);
      continue;
    }
    out[a.name] = String(v);
  }
  return out;
}

/**
 * `qnexus tx <module> <msg> [--arg value …]` for every message of the app's modules that has a
 * client side (args from `client.args`): the same signing, nonce, fee, --wait and --node machinery
 * as `tx transfer`. A message that opens a cross-shard operation is followed, with --wait, until the
 * beacon's decision is applied on the sender's shard, and an abort exits 1 like `tx xtransfer`.
 */
export function moduleTxCommands(tx: Command, sm: StateMachine): void {
  const byModule = new Map<string, { name: string; def: NonNullable<ReturnType<StateMachine['msgByName']>>['def'] }[]>();
  for (const m of sm.messages()) {
    const e = sm.msgByName(m.module, m.name);
    if (!e?.def.client) continue;
    byModule.set(m.module, [...(byModule.get(m.module) ?? []), { name: m.name, def: e.def }]);
  }
  for (const [module, msgs] of byModule) {
    if (TX_BUILTIN_SUBCOMMANDS.has(module)) continue;
    const mc = tx
      .command(module)
      .description(`messages of the ${module} module: ${msgs.map((x) => x.name).join(', ')}`)
      .addHelpText('after', `\n${msgs.map((x) => `  ${module} ${x.name}  ${x.def.client!.args.map((a) => (a.optional ? `[--${a.name} <v>]` : `--${a.name} <v>`)).join(' ')}`).join('\n')}`);
    for (const { name, def } of msgs) {
      const c = mc.command(name).description(`sign a ${module} ${name} transaction, submit it and print its hash (--wait: until final${def.xferPreview ? ' and its cross-shard operation decided' : ''})`);
      for (const a of def.client!.args) c.option(`--${a.name} <value>`, `${a.help}${a.optional ? ' (optional)' : ''}`);
      c.addOption(keystoreOption('sender keystore'))
        .addOption(new Option('--fee <n>', 'fee (genesis feeBurnBps of it burned, the rest to the proposer)').argParser(parseU64).default(1n, '1'))
        .option('--nonce <n>', "sender nonce (default: the node's pendingNonce for the sender)", parseU64)
        .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
        .option('--node <url>', `${NODE_OPTION_HELP}; a node of the sender's shard`)
        .option('--beacon <url>', "the beacon's HTTP API, asked why a cross-shard operation was aborted with --wait (default: $QNEXUS_BEACON, else the local devnet's beacon)")
        .option('--wait', 'wait until the transaction is final (and a cross-shard operation it opens is decided); exit 1 if that was aborted')
        .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, 120)
        .option('--binary', 'submit as application/octet-stream instead of JSON')
        .option('--json', 'print the result as JSON');
      addPassphraseOptions(checkNodeOption(c)).action(async (o: ModuleTxOpts) => {
        const what = `tx ${module} ${name}`;
        const args = moduleMsgArgs(def.client!.args, o, what);
        const payload = sm.buildMsg(module, name, args);
        const s = await prepare(o);
        const built = signTx({ key: s.key, chainId: s.chainId, fee: o.fee, nonce: s.nonce, keyless: s.keyless }, payload);
        const id = await submit(s, built, o);
        const summary: Record<string, string> = { hash: id, kind: `${module}/${name}`, from: built.from, ...args, fee: o.fee.toString(), nonce: s.nonce.toString(), chainId: s.chainId };
        if (printSubmitted(summary, o, 8)) return;
        const w = await waitContext(s, o.timeout);
        const info = await waitFinal(s, id, w);
        // A message that may open a cross-shard operation (an xcall: a swap on a pool of another
        // shard) opened one only if its record exists now that it is final; a local one did not.
        if (!def.xferPreview || !(await opensRecord(s.client, id))) {
          if (o.json) out(JSON.stringify({ ...summary, status: info.status, block: info.block }));
          else out(`${'status'.padEnd(8)}${txLine(info)}`);
          return;
        }
        if (!o.json) out(`${'tx'.padEnd(8)}${txLine(info)}`);
        const x = await waitApplied(w, id);
        const reason = x.status === 'aborted' ? await abortReason(x, id, o.beacon ?? (await defaultBeaconUrl())) : null;
        if (o.json) out(JSON.stringify({ ...summary, status: x.status, decision: x.decision, reason, block: info.block, xtransfer: x }));
        else out(`${'status'.padEnd(8)}${x.status}${reason ? ` (${reason})` : ''}`);
        if (x.status === 'aborted') {
          throw new CliError('XFER_ABORTED', `${what} ${id}: its cross-shard operation was aborted: ${reason ?? 'no reason given'} (the escrow was refunded)`);
        }
      });
    }
  }
}
