import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatAddress, isAddressString } from '@qnexus/crypto';
import { QnexusClient, buildTransfer, type TxInfo } from '@qnexus/sdk';
import { unlockKeystoreFile, readKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, type PassphraseOptions } from '../passphrase.js';
import { note, out, parseChainId, parseSeconds, parseU64 } from '../util.js';
import { defaultNodeUrl, nodeOptionHelp } from './status.js';

interface TransferOpts extends PassphraseOptions {
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

export function txCommand(parent: Command): Command {
  const tx = parent.command('tx').description('build, sign and submit transactions');
  const transfer = tx
    .command('transfer')
    .description('sign a transfer with a keystore, submit it and print its hash (--wait: until final)')
    .requiredOption('--keystore <file>', 'sender keystore')
    .requiredOption('--to <address>', 'recipient address (qn + 40 hex)', parseAddressArg)
    .requiredOption('--amount <n>', 'amount to send (integer base units)', parseU64)
    .addOption(new Option('--fee <n>', 'fee (burned)').argParser(parseU64).default(1n, '1'))
    .option('--nonce <n>', "sender nonce (default: the node's pendingNonce for the sender)", parseU64)
    .option('--chain-id <id>', "chain id to sign for (default: the node's)", parseChainId)
    .option('--node <url>', nodeOptionHelp())
    .option('--wait', 'wait until the transaction is final and print its block')
    .option('--timeout <seconds>', 'how long --wait waits (exit 3 on timeout)', parseSeconds, 60)
    .option('--binary', 'submit as application/octet-stream instead of JSON')
    .option('--json', 'print the result as JSON');
  addPassphraseOptions(transfer)
    .addHelpText(
      'after',
      '\nAPI errors are printed with their code (e.g. TX_NONCE_STALE, TX_INSUFFICIENT_FUNDS) and exit 1.\n' +
        'Example:\n  qnexus tx transfer --keystore devnet/data/keys/account-0.json --passphrase-file devnet/data/passphrase \\\n' +
        '    --to qn… --amount 1000 --node http://127.0.0.1:7100 --wait',
    )
    .action(async (o: TransferOpts) => {
      const client = new QnexusClient(o.node ?? defaultNodeUrl());
      await readKeystoreFile(o.keystore); // fail on a bad file before asking for the passphrase
      const { key } = await unlockKeystoreFile(o.keystore, await getPassphrase(o, { what: `passphrase for ${o.keystore}` }));
      const chainId = o.chainId ?? (await client.status()).chainId;
      const nonce = o.nonce ?? BigInt((await client.account(formatAddress(key.address))).pendingNonce);
      const built = buildTransfer({ key, chainId, to: o.to, amount: o.amount, fee: o.fee, nonce });
      const submitted = await client.submitTx(built.raw, { binary: o.binary ?? false });
      const summary = { hash: submitted.hash, from: built.from, to: o.to, amount: o.amount.toString(), fee: o.fee.toString(), nonce: nonce.toString(), chainId };
      if (!o.json) {
        out(`hash    ${submitted.hash}`);
        out(`from    ${built.from} (nonce ${nonce})`);
        out(`to      ${o.to}`);
        out(`amount  ${o.amount} (fee ${o.fee})`);
      }
      if (submitted.hash !== built.hash) note(`warning: the node reports hash ${submitted.hash}, locally computed ${built.hash}`);
      if (!o.wait) {
        if (o.json) out(JSON.stringify({ ...summary, status: submitted.status }));
        else out(`status  ${submitted.status}`);
        return;
      }
      const info: TxInfo = await client.waitForTx(submitted.hash, { until: 'final', timeoutMs: Math.round(o.timeout * 1000) });
      if (o.json) out(JSON.stringify({ ...summary, status: info.status, block: info.block }));
      else out(`status  ${info.status}${info.block ? ` in block ${info.block.height} (${info.block.hash}, index ${info.block.index})` : ''}`);
    });
  return tx;
}
