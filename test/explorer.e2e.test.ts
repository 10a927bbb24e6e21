// The explorer in headless Chromium against one running devnet: the overview (`/explorer` on a
// node): both shards' heads move, the validators and committees are the devnet's, recent blocks
// show, a cross-shard transfer submitted during the test appears with its phases until committed;
// search finds a transaction submitted during the test and the detail pages link to one another
// (tx → account, tx → block → proposer); the charts draw; nothing overflows horizontally at
// 1400 px or at phone width (390 px); the beacon's network page (`/explorer` on the beacon) loads;
// the faucet button funds a fresh address and shows the refusal of a second drip, and a pool
// created during the test shows on the pools pages. A second suite renders the pool, market,
// balance and faucet views from a stub API in the modules' JSON shapes (no devnet).
// Screenshots go to test-artifacts/ (or $QNEXUS_ARTIFACTS_DIR).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { BEACON_NAME } from '@qnexus/cli';
import { app } from '@qnexus/app';
import { fromHex, parseAddress, toHex } from '@qnexus/crypto';
import { dexMarketId } from '@qnexus/module-dex';
import { tokenIdFor } from '@qnexus/module-token';
import { signTx } from '@qnexus/sdk';
import { freshAddressOn, shardClient, shardNodes, startTestNet, transfer, waitFor, xtransfer, type TestNet } from './helpers.js';

const REQUIRE_TOOLS = process.env.QNEXUS_REQUIRE_TOOLS === '1';
const CHROMIUM = process.env.QNEXUS_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.QNEXUS_ARTIFACTS_DIR || resolve(dirname(fileURLToPath(import.meta.url)), '..', 'test-artifacts');
const SCREENSHOT = 'explorer.png';

function haveChromium(): boolean {
  if (!existsSync(CHROMIUM)) return false;
  const r = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return r.error === undefined && r.status === 0;
}

/** Nothing on the page is wider than the window (no horizontal scrolling). */
async function assertNoOverflow(page: Page, what: string): Promise<void> {
  const w = await page.evaluate(() => ({ scroll: document.scrollingElement!.scrollWidth, inner: window.innerWidth }));
  assert.ok(w.scroll <= w.inner, `${what}: the page is ${w.scroll} px wide in a ${w.inner} px window`);
}

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const p = join(ARTIFACTS, name);
  await page.screenshot({ path: p, fullPage: true });
  console.log(`  explorer screenshot: ${p}`);
}

/** What the page shows in the shards table: shard → displayed head height (null when not known yet). */
async function shownHeights(page: Page): Promise<Map<number, number | null>> {
  const rows = await page.$$eval('[data-testid="shard-row"]', (trs) =>
    trs.map((tr) => {
      const t = tr.querySelector('[data-testid="shard-height"]')?.textContent ?? '';
      return [Number(tr.getAttribute('data-shard')), /^[0-9]+$/.test(t) ? Number(t) : null] as [number, number | null];
    }),
  );
  return new Map(rows);
}

describe('explorer: /explorer in headless Chromium against a running devnet (2 shards × 4 validators + beacon)', function () {
  let net: TestNet;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const consoleErrors: string[] = [];
  const failedRequests: string[] = [];

  before(async function () {
    this.timeout(120_000);
    if (!haveChromium()) {
      const msg = `Chromium is not installed at ${CHROMIUM} (Debian package chromium; or set QNEXUS_CHROMIUM)`;
      if (REQUIRE_TOOLS) assert.fail(`${msg}, and QNEXUS_REQUIRE_TOOLS=1 requires it`);
      console.warn(`\n  !!!!!!!! SKIPPED: ${msg}; install it to run the explorer test (CI sets QNEXUS_REQUIRE_TOOLS=1) !!!!!!!!\n`);
      this.skip();
    }
    net = await startTestNet({ shards: 2, validators: 4, fullNodes: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--headless=new',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-default-apps',
        '--disable-sync',
        '--metrics-recording-only',
        '--no-first-run',
        '--disable-dev-shm-usage',
      ],
    });
  });

  afterEach(async function () {
    // A failing run leaves a picture of what the page showed.
    if (this.currentTest?.state === 'failed' && page && !page.isClosed()) {
      mkdirSync(ARTIFACTS, { recursive: true });
      const p = join(ARTIFACTS, 'explorer-failure.png');
      await page.screenshot({ path: p, fullPage: true }).catch(() => undefined);
      console.log(`  explorer screenshot of the failure: ${p}`);
    }
  });

  /** A page that records console errors and failed requests (every test asserts there were none). */
  async function openPage(): Promise<Page> {
    const p = await browser!.newPage({ viewport: { width: 1500, height: 1100 } });
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    p.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
    p.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    p.on('response', (r) => {
      if (r.status() >= 400) failedRequests.push(`${r.request().method()} ${r.url()}: HTTP ${r.status()}`);
    });
    return p;
  }

  after(async function () {
    this.timeout(60_000);
    await browser?.close().catch(() => undefined);
    await net?.cleanup();
  });

  it('shows both shards with moving heads, the devnet validators and committees, recent blocks, and a live cross-shard transfer', async function () {
    this.timeout(90_000);
    const started = Date.now();
    const node = shardNodes(net, 0)[0]!;
    const apiUrl = net.devnet.process(node).apiUrl;
    const validators = net.devnet.manifest.processes.filter((p) => p.validator !== null).map((p) => p.validator!);
    assert.equal(validators.length, 8);

    page = await openPage();

    const res = await page.goto(`${apiUrl}/explorer`);
    assert.equal(res?.status(), 200);
    assert.equal(res?.headers()['content-type'], 'text/html; charset=utf-8');
    assert.match(res?.headers()['content-security-policy'] ?? '', /connect-src 'self'/);

    // This node's own panel.
    await page.waitForSelector('[data-testid="node-shard"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="node-shard"]'), '0');

    // Both shards with a height: shard 0 from the node's chain, shard 1 from the beacon's snapshot.
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('[data-testid="shard-row"]')];
        return rows.length === 2 && rows.every((r) => /^[0-9]+$/.test(r.querySelector('[data-testid="shard-height"]')?.textContent ?? '') && Number(r.querySelector('[data-testid="shard-height"]')!.textContent) >= 1);
      },
      undefined,
      { timeout: 30_000, polling: 250 },
    );
    const sources = await page.$$eval('[data-testid="shard-source"]', (els) => els.map((e) => e.textContent));
    assert.deepEqual(sources, ['local', 'beacon-snapshot']);
    const first = await shownHeights(page);
    // … and both heads move while we watch (the other shard's with each snapshot, every few slots).
    await page.waitForFunction(
      (h0) => {
        const now = new Map([...document.querySelectorAll('[data-testid="shard-row"]')].map((r) => [Number(r.getAttribute('data-shard')), Number(r.querySelector('[data-testid="shard-height"]')?.textContent)]));
        return h0.every(([k, h]) => (now.get(k) ?? -1) > (h ?? Infinity));
      },
      [...first.entries()],
      { timeout: 20_000, polling: 250 },
    );
    const later = await shownHeights(page);
    for (const [k, h] of first) assert.ok(later.get(k)! > h!, `shard ${k}: ${h} → ${later.get(k)}`);
    // What the page shows is what the API says (a fresh read is at least as far).
    const api = await net.devnet.client(node).shards();
    assert.equal(api.shards.length, 2);
    for (const s of api.shards) assert.ok(s.height !== null && s.height >= later.get(s.shard)!, JSON.stringify(s));

    // Validators: every devnet validator, by address; committees: devnet validators, this node's among shard 0's.
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="validator-row"]').length >= n, validators.length, { timeout: 15_000 });
    const shownValidators = await page.$$eval('[data-testid="validator-row"]', (trs) => trs.map((tr) => tr.getAttribute('data-address')));
    for (const v of validators) assert.ok(shownValidators.includes(v), `validator ${v} is listed`);
    const committees = await page.$$eval('[data-testid="committee-shard"]', (divs) =>
      divs.map((d) => ({ shard: Number(d.getAttribute('data-shard')), members: [...d.querySelectorAll('[data-testid="committee-member"]')].map((li) => li.getAttribute('data-address')) })),
    );
    assert.deepEqual(committees.map((c) => c.shard), [0, 1]);
    for (const c of committees) {
      assert.ok(c.members.length >= 1, `shard ${c.shard} has a committee`);
      for (const m of c.members) assert.ok(validators.includes(m!), `committee member ${m} is a devnet validator`);
    }
    assert.ok(committees[0]!.members.includes(net.devnet.process(node).validator), 'the node serving the page is in shard 0');

    // Recent blocks of shard 0, newest first, each final.
    const blocks = await page.$$eval('[data-testid="block-row"]', (trs) => trs.map((tr) => Number(tr.getAttribute('data-height'))));
    assert.ok(blocks.length >= 2, `blocks listed: ${blocks.join(',')}`);
    assert.deepEqual([...blocks].sort((a, b) => b - a), blocks, 'newest first');
    assert.ok(blocks[0]! >= 1);
    const finals = await page.$$eval('[data-testid="block-finalized"]', (els) => els.map((e) => e.textContent));
    assert.ok(finals.every((f) => f === 'yes'));

    // A cross-shard transfer submitted now shows up in the transfers table, and is followed to its commit.
    const from = net.accountsByShard[0]![0]!;
    const id = await xtransfer(net, from, freshAddressOn(net, 1), 777n);
    const row = `[data-testid="xfer-row"][data-id="${id}"]`;
    await page.waitForSelector(row, { timeout: 30_000 });
    assert.equal(await page.textContent(`${row} [data-testid="xfer-id"]`), `${id.slice(0, 16)}…`);
    assert.match((await page.textContent(`${row} [data-testid="xfer-status"]`)) ?? '', /^(escrowed|committed)$/);
    await page.waitForFunction((sel) => document.querySelector(sel)?.querySelector('[data-testid="xfer-status"]')?.textContent === 'committed', row, { timeout: 45_000, polling: 250 });
    const phases = (await page.textContent(`${row} [data-testid="xfer-phases"]`)) ?? '';
    assert.match(phases, /source-prepared @[0-9]+/);
    assert.match(phases, /source-applied commit @[0-9]+/);
    const listed = await net.devnet.client(node).xtransfers(5);
    assert.ok(listed.xtransfers.some((x) => x.id === id && x.status === 'committed'), 'GET /v1/xtransfers lists it too');
    assert.ok((await net.devnet.client(node).blocks(3)).blocks.length === 3);

    // Live: the page kept polling all along, with no console error and no failed request.
    const polls = Number(await page.getAttribute('body', 'data-polls'));
    assert.ok(polls >= 5, `polls: ${polls}`);
    assert.equal(await page.textContent('[data-testid="live"]'), 'live');
    await screenshot(page, SCREENSHOT);
    console.log(`  (after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failedRequests, [], 'no failed requests');
  });

  it('search finds a transaction submitted during the test; its links lead to the sender, the block and its proposer', async function () {
    this.timeout(90_000);
    const node = shardNodes(net, 0)[0]!;
    const apiUrl = net.devnet.process(node).apiUrl;
    page ??= await openPage();
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.goto(`${apiUrl}/explorer#/`);
    await page.waitForSelector('[data-testid="shard-row"]', { timeout: 15_000 });

    const [from, to] = net.accountsByShard[0]! as [(typeof net.accountsByShard)[0][0], (typeof net.accountsByShard)[0][0]];
    const c = shardClient(net, 0);
    const tx = transfer(net, from, to.address, 4242n, BigInt((await c.account(from.address)).pendingNonce));
    assert.equal((await c.submitTx(tx.raw)).hash, tx.hash);

    // Search by the hash (as a user pastes it: with spaces around) opens the transaction's page.
    await page.fill('[data-testid="search-input"]', `  ${tx.hash}  `);
    await page.press('[data-testid="search-input"]', 'Enter');
    await page.waitForSelector('[data-testid="tx-page"]', { timeout: 15_000 });
    assert.equal(new URL(page.url()).hash, `#/tx/${tx.hash}`);
    assert.equal(await page.textContent('[data-testid="tx-hash"]'), tx.hash);
    await page.waitForFunction(() => document.querySelector('[data-testid="tx-status"]')?.textContent === 'final', undefined, { timeout: 30_000, polling: 250 });
    assert.equal(await page.textContent('[data-testid="tx-amount"]'), '4242');
    assert.equal(await page.textContent('[data-testid="tx-kind"]'), 'transfer');
    const height = Number(await page.textContent('[data-testid="tx-block-link"]'));
    assert.equal(height, (await c.tx(tx.hash)).block!.height);
    await assertNoOverflow(page, 'transaction page at 1400 px');

    // tx → its sender's account: home shard, balance, and this transaction among its recent ones.
    await page.click('[data-testid="tx-from-link"]');
    await page.waitForSelector(`[data-testid="account-tx-row"][data-hash="${tx.hash}"]`, { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="account-address"]'), from.address);
    assert.match((await page.textContent('[data-testid="account-home"]')) ?? '', /^0 \(this node's shard\)/);
    assert.match((await page.textContent('[data-testid="account-balance"]')) ?? '', /^[0-9]+$/);
    assert.equal(await page.textContent(`[data-testid="account-tx-row"][data-hash="${tx.hash}"] .badge`), 'out');

    // Back to the tx, then tx → block (it lists the tx) → the block's proposer.
    await page.goBack();
    await page.waitForSelector('[data-testid="tx-block-link"]', { timeout: 15_000 });
    await page.click('[data-testid="tx-block-link"]');
    await page.waitForSelector(`[data-testid="block-tx-link"]:text-is("${tx.hash}")`, { timeout: 15_000 });
    assert.equal(new URL(page.url()).hash, `#/block/${height}`);
    const proposer = (await page.textContent('[data-testid="block-proposer"]'))!;
    assert.match(proposer, /^qn[0-9a-f]{40}$/);
    await page.click('[data-testid="block-proposer"]');
    await page.waitForSelector('[data-testid="validator-address"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="validator-address"]'), proposer);
    assert.equal(await page.textContent('[data-testid="validator-status"]'), 'active');

    // An account of the other shard: its home shard, and no balance asked of this node.
    const other = net.accountsByShard[1]![0]!.address;
    await page.fill('[data-testid="search-input"]', other);
    await page.press('[data-testid="search-input"]', 'Enter');
    await page.waitForSelector('[data-testid="account-error"]', { timeout: 15_000 });
    assert.equal(new URL(page.url()).hash, `#/account/${other}`);
    assert.match((await page.textContent('[data-testid="account-home"]')) ?? '', /^1 \(open a node of shard 1/);
    assert.equal(await page.textContent('[data-testid="account-error"]'), 'kept by shard 1: ask a node of that shard');
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failedRequests, [], 'no failed requests');
  });

  it('the charts draw, and nothing overflows horizontally at 1400 px nor at 390 px', async function () {
    this.timeout(60_000);
    const apiUrl = net.devnet.process(shardNodes(net, 0)[0]!).apiUrl;
    page ??= await openPage();
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.goto(`${apiUrl}/explorer`);
    // Each chart has a line of at least two points (finality lag: blocks finalized since the index started).
    for (const id of ['chart-tps', 'chart-blocktime', 'chart-lag']) {
      await page.waitForFunction((sel) => Number(document.querySelector(sel)?.getAttribute('data-points')) >= 2, `[data-testid="${id}"]`, { timeout: 30_000, polling: 250 });
      const points = await page.getAttribute(`[data-testid="${id}"] polyline`, 'points');
      assert.ok((points ?? '').trim().split(/\s+/).length >= 2, `${id}: ${points}`);
    }
    await page.waitForSelector('[data-testid="validator-row"]', { timeout: 15_000 });
    await assertNoOverflow(page, 'overview at 1400 px');
    await screenshot(page, 'explorer-1400.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.body.getAttribute('data-polls') !== null);
    await assertNoOverflow(page, 'overview at 390 px');
    await screenshot(page, 'explorer-390.png');
    // A detail page with long hashes, at phone width.
    const b = await net.devnet.client(shardNodes(net, 0)[0]!).blocks(1);
    await page.goto(`${apiUrl}/explorer#/block/${b.blocks[0]!.height}`);
    await page.waitForSelector('[data-testid="block-hash"]', { timeout: 15_000 });
    await assertNoOverflow(page, 'block page at 390 px');
    await screenshot(page, 'explorer-block-390.png');
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failedRequests, [], 'no failed requests');
  });

  it("the beacon's network page: every shard's head and lag, cross-shard flows, live charts; no overflow", async function () {
    this.timeout(60_000);
    const beaconUrl = net.devnet.process(BEACON_NAME).apiUrl;
    page ??= await openPage();
    await page.setViewportSize({ width: 1400, height: 1000 });
    const res = await page.goto(`${beaconUrl}/explorer`);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /^default-src 'none'; script-src 'sha256-/);
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('[data-testid="net-shard-row"]')];
        return rows.length === 2 && rows.every((r) => /^[0-9]+$/.test(r.querySelector('[data-testid="net-shard-height"]')?.textContent ?? ''));
      },
      undefined,
      { timeout: 30_000, polling: 250 },
    );
    const net0 = await net.devnet.client(BEACON_NAME).status();
    assert.equal(await page.textContent('[data-testid="net-shard-row"][data-shard="0"] td'), 'shard 0');
    assert.ok(Number(await page.textContent('[data-testid="net-shard-row"][data-shard="1"] [data-testid="net-shard-height"]')) >= 1, JSON.stringify(net0));
    // The transfer of the first test flows 0 → 1.
    await page.waitForSelector('[data-testid="flow-row"][data-route="0>1"]', { timeout: 15_000 });
    assert.ok(Number(await page.textContent('[data-testid="net-total"]')) >= 1);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-net-lag"]')?.getAttribute('data-points')) >= 2, undefined, { timeout: 15_000, polling: 250 });
    await assertNoOverflow(page, 'network page at 1400 px');
    await screenshot(page, 'explorer-beacon-1400.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertNoOverflow(page, 'network page at 390 px');
    await screenshot(page, 'explorer-beacon-390.png');
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failedRequests, [], 'no failed requests');
  });

  it('the faucet button funds a fresh address, then shows the refusal of a second drip; a pool and a market created now show their reserves, price, depth and trade', async function () {
    this.timeout(90_000);
    const started = Date.now();
    const node = shardNodes(net, 0)[0]!;
    const apiUrl = net.devnet.process(node).apiUrl;
    const c = net.devnet.client(node);
    page ??= await openPage();
    await page.setViewportSize({ width: 1400, height: 1000 });

    // A pool and a market, created the SDK's generic way while the faucet is asked: a token of a
    // shard-0 account, minted to it, paired with qfc in a pool and listed in a market (qfc priced in
    // the token); consecutive nonces, submitted together.
    const owner = net.accountsByShard[0]!.at(-1)!;
    const nonce = BigInt((await c.account(owner.address)).pendingNonce);
    const token = `token/${tokenIdFor(0, parseAddress(owner.address), nonce)}`;
    const deadline = String((await c.shards()).slot + 100_000);
    const msgs: [string, string, Record<string, string>][] = [
      ['token', 'token-create', { symbol: 'EXPL', decimals: '0', 'max-supply': '1000000000000', 'mint-authority': owner.address }],
      ['token', 'token-mint', { denom: token, to: owner.address, amount: '100000000' }],
      ['amm', 'amm-create', { denomA: 'qfc', denomB: token, amountA: '2000000', amountB: '6000000', feeBps: '30', deadline }],
      ['dex', 'dex-create-market', { base: 'qfc', quote: token, tickSize: '1', lotSize: '10' }],
    ];
    let market = '';
    for (const [i, [module, name, args]] of msgs.entries()) {
      const tx = signTx({ key: owner.key, chainId: net.chainId, fee: 1n, nonce: nonce + BigInt(i) }, app.buildMsg(module, name, args));
      await c.submitTx(tx.raw);
      if (name === 'dex-create-market') market = toHex(dexMarketId(0, fromHex(tx.hash)));
    }

    // The faucet: the button opens the form, the drip request is followed on the page until final.
    const fresh = freshAddressOn(net, 0, 231);
    await page.goto(`${apiUrl}/explorer#/account/${fresh}`);
    await page.waitForSelector('[data-testid="account-home"]', { timeout: 15_000 });
    await page.click('[data-testid="faucet"]');
    assert.equal(await page.inputValue('[data-testid="faucet-address"]'), fresh, 'prefilled with the account viewed');
    await page.waitForSelector('[data-testid="faucet-terms"]:text-matches("^drips [0-9]+ qfc to an address at most once per [0-9]+ slots")', { timeout: 10_000 });
    await page.click('[data-testid="faucet-submit"]');
    await page.waitForSelector('[data-testid="faucet-tx-link"]', { timeout: 15_000 });
    const drip = (await page.getAttribute('[data-testid="faucet-tx-link"]', 'href'))!.replace('#/tx/', '');
    assert.match(drip, /^[0-9a-f]{64}$/);
    await page.waitForFunction(() => /: final/.test(document.querySelector('[data-testid="faucet-status"]')?.textContent ?? ''), undefined, { timeout: 30_000, polling: 250 });
    assert.equal((await c.tx(drip)).status, 'final');
    // The coins arrive (through the 2PC path when the faucet lives on the other shard), and the account page shows them.
    const funded = await waitFor('the drip credited', () => c.account(fresh), (a) => BigInt(a.balance) > 0n, 30_000);
    await page.waitForSelector('[data-testid="balance-row"][data-denom="qfc"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="balance-row"][data-denom="qfc"] [data-testid="balance-amount"]'), funded.balance);
    // A second drip for the same address inside its cooldown: the faucet's own code, shown as is.
    await page.click('[data-testid="faucet-submit"]');
    await page.waitForSelector('[data-testid="faucet-error-code"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="faucet-error-code"]'), 'FAUCET_COOLDOWN');
    await assertNoOverflow(page, 'account with the faucet form at 1400 px');
    // That refusal is the one failing request of this test.
    assert.deepEqual(failedRequests.splice(0).map((r) => r.replace(/^POST .*\/v1\/faucet\/(qn[0-9a-f]{40}): HTTP 429$/, 'faucet 429 $1')), [`faucet 429 ${fresh}`]);
    consoleErrors.splice(0, consoleErrors.length, ...consoleErrors.filter((e) => !/status of 429/.test(e)));

    // Two orders that cross once the market exists: another account sells 2000 qfc at 3, the owner
    // buys 1000 at 3; one batch clears 1000 at 3 and 1000 rest on the ask side.
    await waitFor('the market', () => c.moduleQuery('dex', 'list') as Promise<{ markets?: { id: string }[] }>, (r) => (r.markets ?? []).some((m) => m.id === market), 30_000);
    const seller = net.accountsByShard[0]![0]!;
    const til = String((await c.shards()).slot + 10_000);
    const order = async (who: typeof owner, side: string, quantity: string) => {
      const n = BigInt((await c.account(who.address)).pendingNonce);
      await c.submitTx(signTx({ key: who.key, chainId: net.chainId, fee: 1n, nonce: n }, app.buildMsg('dex', 'dex-place', { market, side, price: '3', quantity, goodTilSlot: til })).raw);
    };
    await order(seller, 'sell', '2000');
    await order(owner, 'buy', '1000');

    // Pools: the new one listed with its reserves, and its page with its price.
    await page.click('[data-testid="nav-pools"]');
    await page.waitForSelector(`[data-testid="pool-row"] [data-testid="pool-pair"]:text-is("qfc / ${token}")`, { timeout: 30_000 });
    await page.click(`[data-testid="pool-row"]:has([data-testid="pool-pair"]:text-is("qfc / ${token}")) [data-testid="pool-link"]`);
    await page.waitForSelector('[data-testid="pool-reserves"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="pool-reserves"]'), `2000000 qfc · 6000000 ${token}`);
    assert.equal(await page.textContent('[data-testid="pool-spot"]'), `3 ${token}/qfc`);
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="pool-chart"]')?.getAttribute('data-points')) >= 1, undefined, { timeout: 15_000, polling: 250 });
    await assertNoOverflow(page, 'pool page at 1400 px');
    await screenshot(page, 'explorer-pool-devnet.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertNoOverflow(page, 'pool page at 390 px');

    // Markets: the new one, its trade at the uniform price and the rest of the sell order on the book.
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.click('[data-testid="nav-markets"]');
    await page.waitForSelector(`[data-testid="market-row"][data-id="${market}"]`, { timeout: 15_000 });
    await assertNoOverflow(page, 'markets page at 1400 px');
    await page.click(`[data-testid="market-row"][data-id="${market}"] [data-testid="market-link"]`);
    await page.waitForSelector('[data-testid="trade-row"]', { timeout: 30_000 });
    assert.deepEqual(await page.$$eval('[data-testid="trade-row"] td', (tds) => tds.slice(1, 3).map((t) => t.textContent)), ['3', '1000']);
    assert.equal(await page.textContent('[data-testid="market-last-price"]'), `3 ${token} per qfc`);
    await page.waitForSelector('[data-testid="depth-row"][data-side="ask"][data-price="3"]', { timeout: 15_000 });
    assert.equal(await page.textContent('[data-testid="depth-row"][data-side="ask"] td:nth-child(3)'), '1000');
    await assertNoOverflow(page, 'market page at 1400 px');
    await screenshot(page, 'explorer-market-devnet.png');
    console.log(`  (after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    assert.deepEqual(consoleErrors, [], 'no console errors');
    assert.deepEqual(failedRequests, [], 'no failed requests');
  });
});

// ---------------------------------------------------------------- DeFi views against a stub API
//
// The pool and market pages, the account's balances and the faucet form, rendered from answers in
// the modules' JSON shapes (packages/modules/amm and dex, the faucet route), served by a stub with
// the page's own CSP: every figure the page derives (fixed-point prices, the TWAP, depth, bars) is
// checked against numbers chosen here, without a devnet, and fast.

const POOL = '0000a1b2c3d4e5f6';
const POOL2 = '0000ffeeddccbbaa';
const MARKET = '0000' + '11'.repeat(16);
const ADDR = 'qn' + 'ab'.repeat(20);
const DRIP = 'cd'.repeat(32);
const E18 = 10n ** 18n;

/** A pool as GET /v1/amm/pools/{id} answers (price points: 2.0 for 10 slots, then 2.5 for 30, then 3.0). */
function stubPool(id: string) {
  const prices = [
    { slot: '100', price: (2n * E18).toString() },
    { slot: '110', price: ((5n * E18) / 2n).toString() },
    { slot: '140', price: (3n * E18).toString() },
  ];
  return {
    id, shard: 0, base: 'qfc', quote: 'token/0001', lpDenom: `amm/${id}`,
    reserveBase: '1000000', reserveQuote: '3000000', totalShares: '1732050', lockedShares: '1000', feeBps: 30,
    admin: ADDR, pendingFee: { feeBps: 5, committedSlot: '130' },
    spotPrice: (3n * E18).toString(), cumulativePrice: '123456789000000000000000', lastUpdateSlot: '140', createdSlot: '100',
    window: { hours: 24, toHour: '0' }, volume24h: { base: '5000', quote: '14000' }, fees24h: { base: '15', quote: '42' },
    prices,
  };
}

interface Stub { url: string; requests: string[]; faucetAnswers: { status: number; body: unknown }[]; ammAbsent: boolean; close(): Promise<void> }

async function startStub(): Promise<Stub> {
  const { createServer } = await import('node:http');
  const { EXPLORER_HTML, EXPLORER_CSP } = await import('../packages/node/src/explorer.js');
  const stub = { requests: [] as string[], faucetAnswers: [] as { status: number; body: unknown }[], ammAbsent: false };
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const notFound = (res: import('node:http').ServerResponse) => json(res, 404, { error: { code: 'NOT_FOUND', message: 'no such route' } });
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    stub.requests.push(`${req.method} ${path}`);
    if (path === '/explorer') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': EXPLORER_CSP });
      res.end(EXPLORER_HTML);
      return;
    }
    if (req.method === 'POST' && path === `/v1/faucet/${ADDR}`) {
      const a = stub.faucetAnswers.shift() ?? { status: 500, body: { error: { code: 'INTERNAL', message: 'no answer scripted' } } };
      return json(res, a.status, a.body);
    }
    if (req.method !== 'GET') return notFound(res);
    switch (path) {
      case '/v1/status':
        return json(res, 200, { chainId: 'stub', shard: 0, role: 'full', finalizedHeight: 50, height: 50 });
      case '/v1/amm/list':
        if (stub.ammAbsent) return notFound(res);
        return json(res, 200, { pools: [{ ...stubPool(POOL), prices: [] }, { ...stubPool(POOL2), spotPrice: '1500000000000000001', pendingFee: null, prices: [] }], more: false });
      case `/v1/amm/pools/${POOL}`:
        return json(res, 200, stubPool(POOL));
      case '/v1/dex/list':
        return json(res, 200, { markets: [{ id: MARKET, shard: 0, base: 'qfc', quote: 'token/0001', tickSize: '10', lotSize: '100', minNotional: '1000', admin: ADDR, paused: true, lastPrice: '250', trades: '3', openOrders: 4 }] });
      case `/v1/dex/markets/${MARKET}`:
        return json(res, 200, { id: MARKET, shard: 0, base: 'qfc', quote: 'token/0001', tickSize: '10', lotSize: '100', minNotional: '1000', admin: ADDR, paused: true, lastPrice: '250', trades: '3', openOrders: 4 });
      case `/v1/dex/book/${MARKET}`:
        return json(res, 200, { market: MARKET, bids: [{ price: '240', quantity: '300', orders: 1 }, { price: '230', quantity: '100', orders: 2 }], asks: [{ price: '260', quantity: '200', orders: 1 }], lastPrice: '250' });
      case `/v1/dex/trades/${MARKET}`:
        return json(res, 200, { market: MARKET, trades: [{ seq: '3', price: '250', quantity: '100', height: '48' }, { seq: '2', price: '240', quantity: '200', height: '45' }, { seq: '1', price: '240', quantity: '100', height: '45' }] });
      case `/v1/accounts/${ADDR}/txs`:
        return json(res, 200, { address: ADDR, shard: 0, homeShard: 0, txs: [] });
      case `/v1/accounts/${ADDR}`:
        return json(res, 200, { address: ADDR, shard: 0, homeShard: 0, balance: '10000000', nonce: 0, pendingNonce: 0, publicKey: null, balances: [{ denom: `amm/${POOL}`, amount: '5000' }, { denom: 'qfc', amount: '10000000' }, { denom: 'token/0001', amount: '77' }] });
      case '/v1/validators':
        return json(res, 200, { epoch: 0, validators: [] });
      case '/v1/faucet/status':
        return json(res, 200, { shard: 1, answeredBy: 0, account: ADDR, drip: '10000000', cooldownSlots: 3600, capPerAddress: '100000000', perBlock: 8, epochBps: 100, epochLength: 32, balance: null, owed: null, reserved: null, available: null, epoch: null });
      case `/v1/txs/${DRIP}`:
        return json(res, 200, { hash: DRIP, kind: 'faucet-drip', status: 'final', from: ADDR, to: ADDR, fee: '0', nonce: '0', block: { height: 51, hash: 'ee'.repeat(32), index: 0 }, error: null });
      default:
        return notFound(res);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as import('node:net').AddressInfo).port;
  return Object.assign(stub, { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) });
}

describe('explorer: pools, markets, balances and the faucet form in headless Chromium against a stub API', function () {
  let stub: Stub;
  let browser: Browser | undefined;
  let page: Page;
  const consoleErrors: string[] = [];

  before(async function () {
    this.timeout(60_000);
    if (!haveChromium()) {
      if (REQUIRE_TOOLS) assert.fail(`Chromium is not installed at ${CHROMIUM}, and QNEXUS_REQUIRE_TOOLS=1 requires it`);
      this.skip();
    }
    stub = await startStub();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--headless=new', '--disable-dev-shm-usage', '--no-first-run'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // The stub answers 404 / 4xx on purpose in places: the browser logs those loads; anything else is a fault.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  });

  after(async function () {
    this.timeout(30_000);
    await browser?.close().catch(() => undefined);
    await stub?.close();
  });

  it('lists the pools and opens one: reserves, exact fixed-point prices, the TWAP of its points, the fee change, the chart', async function () {
    this.timeout(30_000);
    await page.goto(`${stub.url}/explorer#/`);
    await page.click('[data-testid="nav-pools"]');
    await page.waitForSelector('[data-testid="pool-row"]', { timeout: 10_000 });
    assert.deepEqual(await page.$$eval('[data-testid="pool-row"]', (trs) => trs.map((t) => t.getAttribute('data-id'))), [POOL, POOL2]);
    // 1.5 + 1e-18 shows as 1.5 (six decimals, cut, never rounded up).
    assert.deepEqual(await page.$$eval('[data-testid="pool-price"]', (tds) => tds.map((t) => t.textContent)), ['3', '1.5']);
    assert.equal(await page.textContent(`[data-testid="pool-row"][data-id="${POOL}"] [data-testid="pool-pair"]`), 'qfc / token/0001');
    await assertNoOverflow(page, 'pools at 1400 px');

    await page.click(`[data-testid="pool-row"][data-id="${POOL}"] [data-testid="pool-link"]`);
    await page.waitForSelector('[data-testid="pool-reserves"]', { timeout: 10_000 });
    assert.equal(new URL(page.url()).hash, `#/pool/${POOL}`);
    assert.equal(await page.textContent('[data-testid="pool-reserves"]'), '1000000 qfc · 3000000 token/0001');
    assert.equal(await page.textContent('[data-testid="pool-spot"]'), '3 token/0001/qfc');
    // (2 × 10 + 2.5 × 30) / 40 = 2.375 over slots 100–140.
    assert.equal(await page.textContent('[data-testid="pool-twap"]'), '2.375 token/0001/qfc, slots 100–140');
    assert.equal(await page.textContent('[data-testid="pool-fee"]'), '30 bps (0.3%)');
    assert.equal(await page.textContent('[data-testid="pool-pending-fee"]'), '5 bps (0.05%), committed at slot 130');
    assert.equal(await page.textContent('[data-testid="pool-volume"]'), '5000 qfc · 14000 token/0001');
    assert.equal(await page.getAttribute('[data-testid="pool-chart"]', 'data-points'), '3');
    const points = (await page.getAttribute('[data-testid="pool-chart"] polyline', 'points'))!.trim().split(/\s+/);
    assert.equal(points.length, 3);
    // The line rises: each point's y (SVG grows downwards) is above the one before.
    const ys = points.map((p) => Number(p.split(',')[1]));
    assert.ok(ys[0]! > ys[1]! && ys[1]! > ys[2]!, points.join(' '));
    // Drawn over the points' range (a price moves by fractions), labelled with the exact figures.
    assert.equal(await page.textContent('[data-testid="pool-chart"] .val'), '3 token/0001/qfc');
    assert.equal(await page.textContent('[data-testid="pool-chart"] .max'), 'range 2–3');
    assert.ok(ys[0]! > 70 && ys[2]! < 20, `the line spans the box: ${points.join(' ')}`);
    await assertNoOverflow(page, 'pool at 1400 px');
    await screenshot(page, 'explorer-pool.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertNoOverflow(page, 'pool at 390 px');
    await page.setViewportSize({ width: 1400, height: 1000 });

    // A node without the AMM's queries: an empty state, not an error.
    stub.ammAbsent = true;
    await page.goto(`${stub.url}/explorer#/pools`);
    await page.waitForSelector('[data-testid="pools-table"] td.empty', { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="pools-table"] td.empty'), 'no pools: this node serves no AMM queries');
    stub.ammAbsent = false;
    assert.deepEqual(consoleErrors, []);
  });

  it('lists the markets and opens one: params, paused, last price, depth by side with cumulative bars, recent trades', async function () {
    this.timeout(30_000);
    await page.goto(`${stub.url}/explorer#/`);
    await page.click('[data-testid="nav-markets"]');
    await page.waitForSelector('[data-testid="market-row"]', { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="market-row-price"]'), '250');
    await page.click('[data-testid="market-link"]');
    await page.waitForSelector('[data-testid="depth-row"]', { timeout: 10_000 });
    assert.equal(new URL(page.url()).hash, `#/market/${MARKET}`);
    assert.equal(await page.textContent('[data-testid="market-paused"]'), 'paused');
    assert.equal(await page.textContent('[data-testid="market-last-price"]'), '250 token/0001 per qfc');
    // Asks above the spread (highest first), bids below (best first), with cumulative quantities and bars.
    const rows = await page.$$eval('[data-testid="depth-row"]', (trs) =>
      trs.map((tr) => ({ side: tr.getAttribute('data-side'), price: tr.getAttribute('data-price'), cells: [...tr.querySelectorAll('td.num')].map((t) => t.textContent), bar: Number(tr.querySelector('rect')?.getAttribute('width')) })),
    );
    assert.deepEqual(rows.map((r) => [r.side, r.price, ...r.cells]), [
      ['ask', '260', '260', '200', '1', '200'],
      ['bid', '240', '240', '300', '1', '300'],
      ['bid', '230', '230', '100', '2', '400'],
    ]);
    assert.deepEqual(rows.map((r) => r.bar), [50, 75, 100]);
    const trades = await page.$$eval('[data-testid="trade-row"]', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((t) => t.textContent)));
    assert.deepEqual(trades, [['3', '250', '100', '48'], ['2', '240', '200', '45'], ['1', '240', '100', '45']]);
    await assertNoOverflow(page, 'market at 1400 px');
    await screenshot(page, 'explorer-market.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertNoOverflow(page, 'market at 390 px');
    await page.setViewportSize({ width: 1400, height: 1000 });
    assert.deepEqual(consoleErrors, []);
  });

  it('an account shows every denom it holds; the faucet form is prefilled with it, shows the drip followed to final, then a refusal', async function () {
    this.timeout(30_000);
    await page.goto(`${stub.url}/explorer#/account/${ADDR}`);
    await page.waitForSelector('[data-testid="balance-row"]', { timeout: 10_000 });
    const balances = await page.$$eval('[data-testid="balance-row"]', (trs) => trs.map((tr) => [tr.getAttribute('data-denom'), tr.querySelector('[data-testid="balance-amount"]')?.textContent]));
    assert.deepEqual(balances, [[`amm/${POOL}`, '5000'], ['qfc', '10000000'], ['token/0001', '77']]);
    // An LP share denom links to its pool.
    assert.equal(await page.getAttribute(`[data-testid="balance-row"][data-denom="amm/${POOL}"] a`, 'href'), `#/pool/${POOL}`);

    assert.equal(await page.isVisible('[data-testid="faucet-status"]'), false);
    await page.click('[data-testid="faucet"]');
    assert.equal(await page.inputValue('[data-testid="faucet-address"]'), ADDR);
    assert.equal(await page.isVisible('[data-testid="faucet-status"]'), true);
    // Its terms, from the faucet module's status query (another shard's faucet: no balance figure).
    await page.waitForFunction(() => document.querySelector('[data-testid="faucet-terms"]')?.textContent !== '', undefined, { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="faucet-terms"]'), 'drips 10000000 qfc to an address at most once per 3600 slots, 100000000 in all; the faucet lives on shard 1.');

    // A malformed address is refused by the page, with no request.
    const posts = () => stub.requests.filter((r) => r.startsWith('POST ')).length;
    await page.fill('[data-testid="faucet-address"]', 'qn123');
    await page.click('[data-testid="faucet-submit"]');
    await page.waitForSelector('[data-testid="faucet-status"][data-state="err"]');
    assert.match((await page.textContent('[data-testid="faucet-status"]'))!, /^BAD_REQUEST: /);
    assert.equal(posts(), 0);

    // Admitted: the hash links to the transaction, followed until final.
    stub.faucetAnswers.push({ status: 202, body: { hash: DRIP, status: 'pending', to: ADDR, shard: 0 } });
    await page.fill('[data-testid="faucet-address"]', `  ${ADDR.toUpperCase()} `);
    await page.click('[data-testid="faucet-submit"]');
    await page.waitForFunction(() => /: final/.test(document.querySelector('[data-testid="faucet-status"]')?.textContent ?? ''), undefined, { timeout: 10_000, polling: 100 });
    assert.deepEqual(stub.requests.filter((r) => r.startsWith('POST ')), [`POST /v1/faucet/${ADDR}`]);
    assert.equal(await page.getAttribute('[data-testid="faucet-tx-link"]', 'href'), `#/tx/${DRIP}`);
    assert.equal(await page.getAttribute('[data-testid="faucet-status"]', 'data-state'), 'ok');

    // Refused by the faucet module: its code and message.
    stub.faucetAnswers.push({ status: 429, body: { error: { code: 'FAUCET_COOLDOWN', message: `${ADDR} had a drip at slot 51; the next one from slot 3651` } } });
    await page.click('[data-testid="faucet-submit"]');
    await page.waitForSelector('[data-testid="faucet-error-code"]', { timeout: 10_000 });
    assert.equal(await page.textContent('[data-testid="faucet-error-code"]'), 'FAUCET_COOLDOWN');
    assert.equal(await page.textContent('[data-testid="faucet-status"]'), `FAUCET_COOLDOWN: ${ADDR} had a drip at slot 51; the next one from slot 3651`);
    await assertNoOverflow(page, 'account with the faucet form at 1400 px');
    await page.setViewportSize({ width: 390, height: 844 });
    await assertNoOverflow(page, 'account with the faucet form at 390 px');
    await screenshot(page, 'explorer-faucet-390.png');
    assert.deepEqual(consoleErrors, []);
  });
});
