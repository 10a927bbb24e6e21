import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatAddress, isAddressString, type UnlockedKey } from '@qnexus/crypto';
import {
  ApiError,
  QnexusClient,
  buildStake,
  buildTransfer,
  buildUnstake,
  buildXTransfer,
  type BeaconXTransferInfo,
  type BuiltTx,
  type TxInfo,
  type BeaconXferPhase,
  type ValidatorInfo,
  type XTransferInfo,
} from '@qnexus/sdk';
import { CliError } from '../errors.js';
import { unlockKeystoreFile, readKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, type PassphraseOptions } from '../passphrase.js';
import { note, out, parseChainId, parseSeconds, parseU64, table } from '../util.js';
import { defaultNodeUrl, nodeOptionHelp } from './status.js';

/** `--beacon` default: $QNEXUS_BEACON (unset: none). */
export function defaultBeaconUrl(): string | undefined {
  return process.env.QNEXUS_BEACON || undefined;
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
}

function parseAddressArg(v: string): string {
  if (!isAddressString(v)) throw new InvalidArgumentError('expected qn followed by 40 lowercase hex characters.');
  return v;
}

function parseXferId(v: string): string {
  const id = v.toLowerCase().replace(/^0x/, '');
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidArgumentError('expected a transfer id: the 64-hex-character hash of its transaction.');
  return id;
}

/** The options `tx transfer` and `tx xtransfer` share. */
function valueTxOptions(cmd: Command, what: string, defaultTimeout: number, waitHelp: string): Command {
  cmd
    .requiredOption('--keystore <file>', 'sender keystore')
    .requiredOption('--to <address>', what, parseAddressArg)
    .requiredOption('--amount <n>', 'amount to send (integer base units)', parseU64)
    .addOption(new Option('--fee <n>', 'fee (burned)').argParser(parseU64).default(1n, '1'))
    .option('--nonce <n>', "sender nonce (default: the node's pendingNonce for the sender)", parseU64)
    .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
    .option('--node <url>', `${nodeOptionHelp()}; a node of the sender's shard`)
    .option('--wait', waitHelp)
    .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, defaultTimeout)
    .option('--binary', 'submit as application/octet-stream instead of JSON')
    .option('--json', 'print the result as JSON');
  return addPassphraseOptions(cmd);
}

interface Signed {
  client: QnexusClient;
  key: UnlockedKey;
  chainId: string;
  nonce: bigint;
}

/** What `prepare` needs: where to send, who signs, and optional chain id and nonce overrides. */
type SignerOpts = PassphraseOptions & { node?: string; keystore: string; chainId?: string; nonce?: bigint };

async function prepare(o: SignerOpts): Promise<Signed> {
  const client = new QnexusClient(o.node ?? defaultNodeUrl());
  await readKeystoreFile(o.keystore); // fail on a bad file before asking for the passphrase
  const { key } = await unlockKeystoreFile(o.keystore, await getPassphrase(o, { what: `passphrase for ${o.keystore}` }));
  const chainId = o.chainId ?? (await client.status()).chainId;
  const nonce = o.nonce ?? BigInt((await client.account(formatAddress(key.address))).pendingNonce);
  return { client, key, chainId, nonce };
}

/** Submit; an API error whose cure is the other transaction kind says so. */
async function submit(s: Signed, built: BuiltTx, o: { binary?: boolean }): Promise<string> {
  try {
    const r = await s.client.submitTx(built.raw, { binary: o.binary ?? false });
    if (r.hash !== built.hash) note(`warning: the node reports hash ${r.hash}, locally computed ${built.hash}`);
    return r.hash;
  } catch (e) {
    if (e instanceof ApiError) {
      const hint = SUBMIT_HINTS[e.code];
      // Only when the node's own message does not already say it.
      if (hint !== undefined && !e.message.includes(hint.unless)) throw new CliError(e.code, `${e.message}\nhint: ${hint.text}`);
    }
    throw e;
  }
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
  const tx = parent.command('tx').description('build, sign and submit transactions');

  const transfer = tx.command('transfer').description("sign a transfer to an account of the sender's shard, submit it and print its hash (--wait: until final)");
  valueTxOptions(transfer, "recipient address (qn + 40 hex) on the sender's shard", 60, 'wait until the transaction is final and print its block')
    .addHelpText(
      'after',
      '\nAPI errors are printed with their code (e.g. TX_NONCE_STALE, TX_INSUFFICIENT_FUNDS) and exit 1. A recipient on\n' +
        'another shard is refused (TX_CROSS_SHARD): use `qnexus tx xtransfer`.\n' +
        'Example:\n  qnexus tx transfer --keystore devnet/data/keys/s0-account-0.json --passphrase-file devnet/data/passphrase \\\n' +
        '    --to qn… --amount 1000 --node http://127.0.0.1:7100 --wait',
    )
    .action(async (o: TransferOpts) => {
      const s = await prepare(o);
      const built = buildTransfer({ key: s.key, chainId: s.chainId, to: o.to, amount: o.amount, fee: o.fee, nonce: s.nonce });
      const sent = await submitAndPrint(s, built, o, 'hash');
      if (!sent) return;
      const { id: hash, summary } = sent;
      const info: TxInfo = await s.client.waitForTx(hash, { until: 'final', timeoutMs: Math.round(o.timeout * 1000) });
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
    .option('--beacon <url>', "the beacon's HTTP API, asked why a transfer was aborted with --wait (default: $QNEXUS_BEACON)")
    .addHelpText(
      'after',
      `
The sender's shard burns the fee and holds the amount in escrow; the beacon asks the
recipient's shard to prepare, then logs commit (the amount is credited there) or abort (it is
refunded; the beacon also aborts what is not decided within the genesis xferTimeoutSlots).
The id is the transaction hash: GET /v1/xtransfers/{id} on either shard's nodes or on the
beacon (qnexus tx xstatus <id>). --wait prints the phases and exits 0 when committed,
1 (XFER_ABORTED, with the beacon's reason if --beacon is given) when aborted, 3 on timeout.
A recipient on the sender's own shard is refused (TX_SAME_SHARD): use tx transfer.
Example:
  qnexus tx xtransfer --keystore devnet/data/keys/s0-account-0.json --passphrase-file devnet/data/passphrase \\
    --to <an s1 account> --amount 1000 --node http://127.0.0.1:7100 --beacon http://127.0.0.1:7199 --wait`,
    )
    .action(async (o: TransferOpts) => {
      const s = await prepare(o);
      const built = buildXTransfer({ key: s.key, chainId: s.chainId, to: o.to, amount: o.amount, fee: o.fee, nonce: s.nonce });
      const sent = await submitAndPrint(s, built, o, 'id');
      if (!sent) return;
      const { id, summary } = sent;
      const deadline = Date.now() + Math.round(o.timeout * 1000);
      const info = await s.client.waitForTx(id, { until: 'final', timeoutMs: Math.round(o.timeout * 1000) });
      if (!o.json) out(`tx      ${txLine(info)}`);
      const x = await s.client.waitForXTransfer(id, { until: 'applied', timeoutMs: Math.max(1, deadline - Date.now()) });
      if (o.json) out(JSON.stringify({ ...summary, status: x.status, decision: x.decision, block: info.block, xtransfer: x }));
      else {
        const lines = formatXTransfer(x);
        const at = lines.findIndex((l) => l.startsWith('phases'));
        for (const line of at >= 0 ? lines.slice(at) : lines.slice(-1)) out(line);
      }
      if (x.status === 'aborted') {
        // The source shard records only the outcome; the beacon knows why.
        let reason = xferReason(x);
        const beaconUrl = o.beacon ?? defaultBeaconUrl();
        if (reason === null && beaconUrl !== undefined) {
          try {
            reason = xferReason(await new QnexusClient(beaconUrl, { timeoutMs: 5000 }).beaconXTransfer(id));
          } catch (e) {
            note(`(could not ask the beacon at ${beaconUrl} why: ${(e as Error).message})`);
          }
        }
        const why = reason ?? (beaconUrl === undefined ? 'reason unknown here (pass --beacon <url> to ask the beacon)' : 'no reason given');
        throw new CliError('XFER_ABORTED', `cross-shard transfer ${id} was aborted: ${why} (the amount was refunded to ${built.from})`);
      }
    });

  stakeCommands(tx);

  tx.command('xstatus')
    .description('show a cross-shard transfer as a shard node or the beacon records it')
    .argument('<id>', 'transfer id (the hash of its xtransfer transaction)', parseXferId)
    .option('--node <url>', `${nodeOptionHelp()}; a node of either shard, or the beacon`)
    .option('--json', 'print the raw answer')
    .action(async (id: string, o: { node?: string; json?: boolean }) => {
      const client = new QnexusClient(o.node ?? defaultNodeUrl());
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
}

/** The options `tx stake` and `tx unstake` share. */
function stakingOptions(cmd: Command): Command {
  cmd
    .addOption(new Option('--fee <n>', 'fee (part burned, the rest to the proposer)').argParser(parseU64).default(1n, '1'))
    .option('--nonce <n>', "signer nonce (default: the node's pendingNonce for the signer)", parseU64)
    .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
    .option('--node <url>', `${nodeOptionHelp()}; a node of the signer's home shard`)
    .option('--beacon <url>', "the beacon's HTTP API, asked why a request was refused with --wait (default: $QNEXUS_BEACON)")
    .option('--wait', 'wait until the transaction is final and the beacon has decided; exit 1 if it refused')
    .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, 120)
    .option('--json', 'print the result as JSON');
  return addPassphraseOptions(cmd);
}

/**
 * Submit a staking transaction and, with --wait, follow it until the beacon's
 * decision is applied on the signer's shard (the same 2PC path as a cross-shard
 * transfer, with the beacon as the other side).
 */
async function submitStaking(s: Signed, built: BuiltTx, o: StakeOpts, what: string, fields: Record<string, string>): Promise<void> {
  const id = await submit(s, built, {});
  const summary: Record<string, string> = { id, from: built.from, ...fields, fee: o.fee.toString(), nonce: s.nonce.toString(), chainId: s.chainId };
  if (!o.json) for (const [k, v] of Object.entries(summary)) if (k !== 'chainId') out(`${k.padEnd(10)}${v}`);
  if (!o.wait) {
    if (o.json) out(JSON.stringify({ ...summary, status: 'pending' }));
    else out(`${'status'.padEnd(10)}pending`);
    return;
  }
  const deadline = Date.now() + Math.round(o.timeout * 1000);
  const info = await s.client.waitForTx(id, { until: 'final', timeoutMs: Math.round(o.timeout * 1000) });
  if (!o.json) out(`${'tx'.padEnd(10)}${txLine(info)}`);
  const x = await s.client.waitForXTransfer(id, { until: 'applied', timeoutMs: Math.max(1, deadline - Date.now()) });
  const validator = fields.validator!;
  const beaconUrl = o.beacon ?? defaultBeaconUrl();
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
    let reason = xferReason(x);
    if (reason === null && beaconUrl !== undefined) {
      try {
        reason = xferReason(await new QnexusClient(beaconUrl, { timeoutMs: 5000 }).beaconXTransfer(id));
      } catch (e) {
        note(`(could not ask the beacon at ${beaconUrl} why: ${(e as Error).message})`);
      }
    }
    throw new CliError(reason ?? 'STAKE_REFUSED', `the beacon refused the ${what}${reason ? ` (${reason})` : beaconUrl === undefined ? ' (pass --beacon <url> to see why)' : ''}`);
  }
}

/** A validator record as text lines. */
export function formatValidator(v: ValidatorInfo): string[] {
  const ep = (n: number | null) => (n === null ? '-' : String(n));
  const pct = (r: number | null) => (r === null ? '-' : `${(r * 100).toFixed(1)}%`);
  return table([
    ['validator', v.address],
    ['home', v.home],
    ['status', v.status],
    ['shard', v.shard === null ? '-' : String(v.shard)],
    ['stake', v.stake],
    ['rewards', v.rewards],
    ['slashed', v.slashed],
    ['epochs', `activation ${ep(v.activationEpoch)}, exit ${ep(v.exitEpoch)}, withdrawable ${ep(v.withdrawableEpoch)}`],
    ['votes', `epoch ${ep(v.participation.epoch)}: ${v.participation.signed}/${v.participation.blocks} (${pct(v.participation.rate)}); lifetime ${v.lifetime.signed}/${v.lifetime.blocks} (${pct(v.lifetime.rate)})`],
  ]);
}

function stakeCommands(tx: Command): void {
  const stake = tx
    .command('stake')
    .description('bond QFC from a funding account to a validator key; the beacon activates it at an epoch boundary')
    .requiredOption('--keystore <file>', 'funding ("home") account keystore: pays amount + fee, receives the stake back after unbonding')
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
  qnexus tx stake --keystore devnet/data/keys/s0-account-0.json --validator-keystore my-validator.json \
    --amount 5000 --passphrase-file devnet/data/passphrase --node http://127.0.0.1:7100 --wait`,
    )
    .action(async (o: StakeOpts) => {
      const s = await prepare(o);
      let validatorKey = s.key;
      if (o.validatorKeystore !== undefined && o.validatorKeystore !== o.keystore) {
        await readKeystoreFile(o.validatorKeystore);
        validatorKey = (await unlockKeystoreFile(o.validatorKeystore, await getPassphrase(o, { what: `passphrase for ${o.validatorKeystore}` }))).key;
      }
      const built = buildStake({ key: s.key, validatorKey, chainId: s.chainId, amount: o.amount!, fee: o.fee, nonce: s.nonce });
      await submitStaking(s, built, o, 'stake', { validator: formatAddress(validatorKey.address), amount: o.amount!.toString() });
    });

  const unstake = tx
    .command('unstake')
    .description('take a validator out of the committees; its stake and rewards return home after the unbonding period')
    .requiredOption('--keystore <file>', "signer: the validator's home (funding) account, or the validator key itself")
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
      const built = buildUnstake({ key: s.key, chainId: s.chainId, validator, fee: o.fee, nonce: s.nonce });
      await submitStaking(s, built, o, 'unstake', { validator });
    });
}
