import { Command, InvalidArgumentError, Option } from 'commander';
import { existsSync } from 'node:fs';
import { DEFAULT_SCHEME, type SchemeName } from '@qnexus/crypto';
import { CliError } from '../errors.js';
import { createKeystoreFile, readKeystoreFile, unlockKeystoreFile } from '../keystore.js';
import { addPassphraseOptions, getPassphrase, hasPassphraseSource, type PassphraseOptions } from '../passphrase.js';
import { intParser, out, parseScheme } from '../util.js';

interface NewOpts extends PassphraseOptions {
  out: string;
  scheme: SchemeName;
  force?: boolean;
  scryptN?: number;
  json?: boolean;
}

interface ShowOpts extends PassphraseOptions {
  decrypt?: boolean;
  json?: boolean;
}

function parseScryptN(value: string): number {
  const n = intParser(2, 1 << 22)(value);
  if ((n & (n - 1)) !== 0) throw new InvalidArgumentError('expected a power of two.');
  return n;
}

export function keysCommand(parent: Command): Command {
  const keys = parent.command('keys').description('create and inspect encrypted ML-DSA keystores');

  const create = keys
    .command('new')
    .description('create a new random key and write it as an encrypted keystore (scrypt + AES-256-GCM)')
    .requiredOption('-o, --out <file>', 'keystore file to write (mode 0600)')
    .option('--scheme <scheme>', 'ML-DSA parameter set: ml-dsa-44, ml-dsa-65 or ml-dsa-87', parseScheme, DEFAULT_SCHEME)
    .option('-f, --force', 'overwrite an existing file')
    .option('--json', 'print the result as JSON')
    .addOption(new Option('--scrypt-n <N>', 'scrypt cost parameter (power of two; default 2^15)').argParser(parseScryptN).hideHelp());
  addPassphraseOptions(create)
    .addHelpText(
      'after',
      '\nWithout --passphrase-env/--passphrase-file the passphrase is asked twice on the terminal (hidden).\n' +
        'Example:\n  QN_PASS=secret qnexus keys new --out alice.json --passphrase-env QN_PASS',
    )
    .action(async (o: NewOpts) => {
      if (!o.force && existsSync(o.out)) throw new CliError('FILE_EXISTS', `keystore ${o.out} already exists (pass --force to overwrite it)`);
      const pass = await getPassphrase(o, { confirm: true, forNewKey: true, what: 'new keystore passphrase' });
      const opts: { force: boolean; scryptN?: number } = { force: o.force ?? false };
      if (o.scryptN !== undefined) opts.scryptN = o.scryptN;
      const file = await createKeystoreFile(o.out, o.scheme, pass, opts);
      if (o.json) out(JSON.stringify({ address: file.address, scheme: file.scheme, file: o.out }));
      else {
        out(`address  ${file.address}`);
        out(`scheme   ${file.scheme}`);
        out(`file     ${o.out}`);
      }
    });

  const show = keys
    .command('show')
    .description('print the address, scheme and public key of a keystore (optionally check its passphrase)')
    .argument('<file>', 'keystore file')
    .option('--decrypt', 'decrypt the key to verify the passphrase')
    .option('--json', 'print the result as JSON');
  addPassphraseOptions(show)
    .addHelpText('after', '\nWith --decrypt a wrong passphrase fails with KEYSTORE_BAD_PASSPHRASE (exit 1).')
    .action(async (path: string, o: ShowOpts) => {
      if (!o.decrypt && hasPassphraseSource(o)) throw new CliError('USAGE', '--passphrase-env/--passphrase-file only apply with --decrypt', 2);
      const file = await readKeystoreFile(path);
      if (o.decrypt) await unlockKeystoreFile(path, await getPassphrase(o));
      const k = file.crypto.kdfparams;
      if (o.json) {
        const res: Record<string, unknown> = { address: file.address, scheme: file.scheme, publicKey: file.publicKey, kdf: { name: 'scrypt', N: k.N, r: k.r, p: k.p } };
        if (o.decrypt) res.decrypted = true;
        out(JSON.stringify(res));
        return;
      }
      out(`address     ${file.address}`);
      out(`scheme      ${file.scheme}`);
      out(`kdf         scrypt N=${k.N} r=${k.r} p=${k.p}`);
      if (o.decrypt) out('passphrase  ok (key decrypted and matches its address)');
      out(`public key  ${file.publicKey}`);
    });

  return keys;
}
