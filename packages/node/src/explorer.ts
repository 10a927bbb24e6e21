import { BASE_STYLE, CLIENT_LIB, SVG_ANCHOR, explorerDocument, explorerResponse, type RawBody } from '@qnexus/runtime';

/**
 * The explorer every node serves at `GET /explorer`: one self-contained page (inline CSS and
 * vanilla JS, nothing loaded from elsewhere) with client-side routes in the URL's hash:
 *   #/                  overview: this node, every shard's head, charts (tx/s, block time,
 *                       finality lag), recent blocks, cross-shard transfers, committees, validators
 *   #/search/<q>        what a query names (GET /v1/search): one match opens it
 *   #/block/<height|hash>, #/tx/<hash>, #/account/<address>, #/validator/<address>,
 *   #/xtransfer/<id>    detail pages, linked to one another (block → txs → accounts → validator)
 *   #/pools, #/pool/<id>        this shard's AMM pools (GET /v1/amm/list, /v1/amm/pools/{id}):
 *                       reserves, shares, spot price and a TWAP over the recorded points, 24 h
 *                       volume and fees, the fee and a pending change, a price chart
 *   #/markets, #/market/<id>    this shard's DEX markets (GET /v1/dex/list, /v1/dex/markets/{id},
 *                       /v1/dex/book/{id}, /v1/dex/trades/{id}): params, last clearing price,
 *                       depth per side, recent trades
 * The header's faucet button opens a small form (prefilled with the account being viewed) that
 * POSTs /v1/faucet/{address} and shows the answer: the drip request's hash (followed until it is
 * final or rejected) or the refusal's code and message.
 * It polls this node's JSON API and renders with DOM nodes and textContent only (no
 * innerHTML: nothing the API returns is ever parsed as markup). The Content-Security-Policy
 * allows exactly the inline style and script below (by hash) and same-origin fetches.
 *
 * Stable `data-testid` attributes mark what the e2e test (test/explorer.e2e.test.ts) reads.
 */

const STYLE = BASE_STYLE + String.raw`
.committees { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(260px, 100%), 1fr)); gap: 10px; }
.committee { border: 1px solid var(--line); border-radius: 4px; padding: 6px 10px; min-width: 0; }
.committee h3 { font-size: 13px; margin: 0 0 4px; }
.committee ul { margin: 0; padding-left: 18px; }
.committee li { font-size: 12px; overflow-wrap: anywhere; }
#detail h2 { margin-top: 14px; }
tr.mine td:first-child::after { content: " \2190 this node"; color: var(--acc); font-size: 12px; }
[hidden] { display: none !important; }
nav.nav { display: flex; gap: 12px; }
.faucet-panel { flex: 1 1 100%; display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; min-width: 0; }
.faucet-panel form { display: flex; gap: 6px; flex: 0 1 520px; min-width: 0; }
.faucet-panel input { flex: 1 1 auto; min-width: 0; background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 4px; padding: 5px 8px; font: inherit; }
.faucet-status { flex: 1 1 240px; min-width: 0; overflow-wrap: anywhere; color: var(--dim); }
.faucet-status.ok { color: var(--ok); }
.faucet-status.err { color: var(--bad); }
.faucet-panel .note { flex: 1 1 100%; margin: 0; }
svg.bar { display: block; width: 120px; max-width: 100%; height: 10px; }
svg.bar .bid { fill: var(--ok); } svg.bar .ask { fill: var(--bad); }
tr.spread td { color: var(--dim); font-size: 12px; text-align: center; }
.b-paused { color: var(--bad); border-color: var(--bad); }
.b-trading, .b-bid { color: var(--ok); border-color: var(--ok); }
.b-ask { color: var(--bad); border-color: var(--bad); }
`;

const SCRIPT = CLIENT_LIB + String.raw`
(() => {
  const POLL_MS = 1000;
  // Validators and committees change at epoch boundaries: fetched every few polls; charts every other poll; a detail page every third.
  const SLOW_EVERY = 5;
  const CHART_EVERY = 2;
  const DETAIL_EVERY = 3;
  const BEACON_SHARD = 0xffff;
  let polls = 0;
  let lastOk = 0;
  let localShard = null;
  let headHeight = null;
  let shardCount = null;
  /** Bumped on every navigation: an answer for an earlier view is dropped. */
  let gen = 0;
  let view = null;

  const shardName = (k) => (k === BEACON_SHARD ? 'beacon' : String(k));
  const addrLink = (a, testid) => (a ? link('account', a, shortAddr(a), { class: 'mono', title: a, 'data-testid': testid }) : '\u2014');
  const kv = (rows) => rows.flatMap(([k, v, id]) => [el('dt', null, k), el('dd', { 'data-testid': id }, v === null || v === undefined ? '\u2014' : v)]);
  const section = (title, kids, cls) => el('section', { class: cls || 'wide' }, el('h2', null, ...[].concat(title)), ...kids);

  // ------------------------------------------------------------------ overview

  function overviewSkeleton() {
    const m = $('view');
    m.replaceChildren(
      el('section', null, el('h2', null, 'This node'), el('dl', { id: 'node-info', 'data-testid': 'node-info' })),
      el('section', null,
        el('h2', null, 'Shards ', el('small', null, 'this one from its chain, the others from the beacon\'s signed snapshot')),
        el('table', { 'data-testid': 'shards-table' },
          el('thead', null, el('tr', null, ...['Shard', 'Height', 'Finalized', 'Slot', 'Round', 'Block', 'Slots behind', 'Source'].map((h, i) => el('th', { class: i >= 1 && i <= 4 || i === 6 ? 'num' : null }, h)))),
          el('tbody', { id: 'shards-body' }))),
      el('section', { class: 'wide' },
        el('h2', null, 'Activity ', el('small', { id: 'charts-sub' }, 'this shard\'s newest blocks')),
        el('div', { class: 'charts' },
          chartBox('Transactions / s', 'chart-tps', 'per block, 5-block window'),
          chartBox('Block time', 'chart-blocktime', 'seconds between finalized blocks'),
          chartBox('Finality lag', 'chart-lag', 'slot start \u2192 finalized here'))),
      el('section', { class: 'wide' },
        el('h2', null, 'Recent cross-shard transfers ', el('small', null, 'this shard\'s records, newest first')),
        el('table', { 'data-testid': 'xfers-table' },
          el('thead', null, el('tr', null, ...['Id', 'Kind', 'Route', 'From', 'To', 'Amount', 'Status', 'Phases'].map((h) => el('th', { class: h === 'Amount' ? 'num' : null }, h)))),
          el('tbody', { id: 'xfers-body' }))),
      el('section', null,
        el('h2', null, 'Recent blocks ', el('small', null, 'this shard, newest first')),
        el('table', { 'data-testid': 'blocks-table' },
          el('thead', null, el('tr', null, ...['Height', 'Hash', 'Slot', 'Proposer', 'Txs', 'Final', 'Cert. round', 'Signers'].map((h) => el('th', { class: ['Height', 'Slot', 'Txs', 'Cert. round', 'Signers'].includes(h) ? 'num' : null }, h)))),
          el('tbody', { id: 'blocks-body' }))),
      el('section', null, el('h2', null, 'Committees ', el('small', { id: 'committee-epoch' })), el('div', { id: 'committees', class: 'committees', 'data-testid': 'committees' })),
      el('section', { class: 'wide' },
        el('h2', null, 'Validators ', el('small', { id: 'validators-source' })),
        el('table', { 'data-testid': 'validators-table' },
          el('thead', null, el('tr', null, ...['Address', 'Status', 'Stake', 'Shard', 'In this shard\'s committee', 'Participation', 'Rewards'].map((h) => el('th', { class: ['Stake', 'Shard', 'Participation', 'Rewards'].includes(h) ? 'num' : null }, h)))),
          el('tbody', { id: 'validators-body' }))),
    );
  }

  function renderStatus(s) {
    localShard = s.shard;
    headHeight = s.finalizedHeight;
    $('title-sub').textContent = s.chainId + ' \u00b7 shard ' + s.shard + ' \u00b7 ' + s.role;
    const rows = [
      ['Chain', s.chainId, 'chain'],
      ['Shard', s.shard, 'shard'],
      ['Role', s.role + (s.validator ? ' ' + s.validator : ''), 'role'],
      ['Peers', s.peers, 'peers'],
      ['Head height', s.height, 'height'],
      ['Finalized height', s.finalizedHeight, 'finalized'],
      ['Epoch', s.epoch, 'epoch'],
      ['Round / step', s.round + ' / ' + s.step, 'round'],
      ['Mempool', s.mempoolSize, 'mempool'],
      ['Syncing', s.syncing ? 'yes' : 'no', 'syncing'],
      ['Event-loop lag', s.eventLoopLagMs + ' ms' + (s.overloaded ? ' (overloaded)' : ''), 'lag'],
      ['Peer id', s.peerId, 'peer-id'],
    ];
    $('node-info').replaceChildren(...rows.flatMap(([k, v, id]) => [el('dt', null, k), el('dd', { 'data-testid': 'node-' + id, class: id === 'peer-id' || id === 'chain' ? 'mono' : null }, v)]));
  }

  function renderShards(r) {
    shardCount = r.shardCount;
    $('slot').textContent = 'slot ' + r.slot + ' \u00b7 epoch ' + r.epoch;
    $('shards-body').replaceChildren(
      ...r.shards.map((s) =>
        el('tr', { 'data-testid': 'shard-row', 'data-shard': s.shard, class: s.source === 'local' ? 'mine' : null },
          td(s.shard),
          num(s.height, { 'data-testid': 'shard-height' }),
          num(s.finalizedHeight, { 'data-testid': 'shard-finalized' }),
          num(s.slot),
          num(s.round),
          td(s.blockHash && s.source === 'local' ? link('block', s.blockHash, short(s.blockHash, 12)) : short(s.blockHash, 12), { class: 'mono', title: s.blockHash }),
          num(s.slot === null ? null : Math.max(0, r.slot - s.slot)),
          el('td', null, badge(s.source, 'shard-source')),
        ),
      ),
    );
  }

  function renderBlocks(r) {
    const rows = r.blocks.map((b) =>
      el('tr', { 'data-testid': 'block-row', 'data-height': b.height },
        num(link('block', b.height, String(b.height), { 'data-testid': 'block-link' })),
        td(link('block', b.hash, short(b.hash, 16)), { class: 'mono', title: b.hash }),
        num(b.slot),
        td(b.proposer ? link('validator', b.proposer, shortAddr(b.proposer)) : 'genesis', { class: 'mono', title: b.proposer }),
        num(b.txCount),
        el('td', null, badge(b.finalized ? 'yes' : 'no', 'block-finalized')),
        num(b.round),
        num(b.signers),
      ),
    );
    $('blocks-body').replaceChildren(...(rows.length ? rows : [emptyRow(8, 'no blocks yet')]));
  }

  function renderXfers(r) {
    const rows = r.xtransfers.map((x) =>
      el('tr', { 'data-testid': 'xfer-row', 'data-id': x.id },
        td(link('xtransfer', x.id, short(x.id, 16), { 'data-testid': 'xfer-link' }), { class: 'mono', title: x.id, 'data-testid': 'xfer-id' }),
        td(x.kind),
        td(shardName(x.sourceShard) + ' \u2192 ' + shardName(x.destinationShard)),
        td(addrLink(x.from)),
        td(addrLink(x.to)),
        num(x.amount),
        el('td', null, badge(x.status, 'xfer-status')),
        el('td', { 'data-testid': 'xfer-phases' }, ...x.phases.map((p) => el('span', { class: 'phase' }, p.phase + (p.decision ? ' ' + p.decision : '') + (p.height !== undefined ? ' @' + p.height : '')))),
      ),
    );
    $('xfers-body').replaceChildren(...(rows.length ? rows : [emptyRow(8, 'no cross-shard transfers recorded on this shard yet')]));
  }

  function renderValidators(r) {
    const inCommittee = new Set((r.committee || []).map((m) => m.address));
    $('validators-source').textContent = '(' + r.source + ', epoch ' + r.epoch + ')';
    const rows = r.validators.map((v) => {
      const rate = v.lifetime && v.lifetime.rate !== null ? Math.round(v.lifetime.rate * 100) + '%' : null;
      return el('tr', { 'data-testid': 'validator-row', 'data-address': v.address },
        td(link('validator', v.address, v.address), { class: 'mono' }),
        el('td', null, badge(v.status)),
        num(v.stake),
        num(v.shard),
        el('td', null, inCommittee.has(v.address) ? badge('yes') : ''),
        num(rate),
        num(v.rewards),
      );
    });
    $('validators-body').replaceChildren(...(rows.length ? rows : [emptyRow(7, 'no validators known yet')]));
  }

  function renderCommittees(c) {
    $('committee-epoch').textContent = '(epoch ' + c.epoch + ', ' + c.source + ')';
    $('committees').replaceChildren(
      ...c.shards.map((s) =>
        el('div', { class: 'committee', 'data-testid': 'committee-shard', 'data-shard': s.shard },
          el('h3', null, 'Shard ' + s.shard + (s.shard === localShard ? ' (this node)' : '') + ' \u00b7 ' + s.members.length + ' members \u00b7 stake ' + s.totalStake),
          el('ul', null, ...s.members.map((m) => el('li', { class: 'mono', 'data-testid': 'committee-member', 'data-address': m.address }, link('validator', m.address, m.address), ' \u00b7 ' + m.stake))),
        ),
      ),
    );
  }

  /** Charts from the newest blocks: consecutive heights only (a gap is not a block time). */
  function renderActivity(a) {
    const bs = a.blocks;
    const secs = (i) => {
      const b = bs[i], p = bs[i - 1];
      if (!p || b.height !== p.height + 1) return null;
      if (b.finalizedAt !== null && p.finalizedAt !== null) return Math.max(0, (b.finalizedAt - p.finalizedAt) / 1000);
      return ((b.slot - p.slot) * a.slotMs) / 1000;
    };
    const times = bs.map((_, i) => secs(i));
    const W = 5;
    const tps = bs.map((_, i) => {
      let txs = 0, t = 0;
      for (let j = Math.max(1, i - W + 1); j <= i; j++) { if (times[j] === null) return null; txs += bs[j].txCount; t += times[j]; }
      return i >= 1 && t > 0 ? txs / t : null;
    });
    const lag = bs.filter((b) => b.finalizedAt !== null).map((b) => Math.max(0, (b.finalizedAt - (a.genesisTime + b.slot * a.slotMs)) / 1000));
    drawChart($('view').querySelector('[data-testid="chart-tps"]'), [{ name: 'tx/s', values: tps.slice(1) }], 'tx/s', 2);
    drawChart($('view').querySelector('[data-testid="chart-blocktime"]'), [{ name: 'block time', values: times.slice(1) }], 's', 2);
    drawChart($('view').querySelector('[data-testid="chart-lag"]'), [{ name: 'finality lag', values: lag }], 's', 2);
    $('charts-sub').textContent = 'shard ' + a.shard + ', the newest ' + bs.length + ' blocks (finality lag: blocks finalized since this page\'s index started)';
  }

  const overview = {
    build: overviewSkeleton,
    jobs(n) {
      const jobs = [
        ['/v1/status', renderStatus],
        ['/v1/shards', renderShards],
        ['/v1/blocks?limit=15', renderBlocks],
        ['/v1/xtransfers?limit=20', renderXfers],
      ];
      if (n % CHART_EVERY === 0) jobs.push(['/v1/activity', renderActivity]);
      if (n % SLOW_EVERY === 0) jobs.push(['/v1/validators', renderValidators], ['/v1/committee', renderCommittees]);
      return jobs;
    },
  };

  // ------------------------------------------------------------------ detail pages

  /** A detail view: one titled panel filled from GETs (a list of paths, or a loader giving the values), refreshed every few polls. */
  function detail(title, testid, paths, render) {
    return {
      build() {
        $('view').replaceChildren(el('section', { class: 'wide', 'data-testid': testid }, el('h2', { 'data-testid': 'detail-title' }, title), el('div', { id: 'detail' }, el('p', { class: 'empty' }, 'loading\u2026'))));
      },
      jobs(n) {
        if (n % DETAIL_EVERY !== 0) return [];
        return [[paths, (vals) => $('detail').replaceChildren(...[].concat(render(...vals)))]];
      },
    };
  }
  /** A GET whose "not found" is an answer to show, not an error of the page. */
  const tryGet = (path) => get(path).catch((e) => (e instanceof ApiError && e.status < 500 ? { __error: e } : Promise.reject(e)));
  const failed = (r) => (r && r.__error ? el('p', { class: 'empty', 'data-testid': 'detail-error' }, r.__error.code + ': ' + r.__error.message) : null);

  function blockView(b) {
    if (failed(b)) return failed(b);
    const prev = b.height > 0 ? link('block', b.height - 1, '\u2190 ' + (b.height - 1), { 'data-testid': 'block-prev' }) : null;
    // No link past the head: that block does not exist yet.
    const next = headHeight !== null && b.height < headHeight ? link('block', b.height + 1, (b.height + 1) + ' \u2192', { 'data-testid': 'block-next' }) : null;
    return [
      el('dl', { 'data-testid': 'block-info' }, ...kv([
        ['Height', el('span', null, String(b.height), ' ', prev || '', ' ', next || ''), 'block-height'],
        ['Shard', b.shard, 'block-shard'],
        ['Hash', el('span', { class: 'mono' }, b.hash), 'block-hash'],
        ['Slot', b.slot, 'block-slot'],
        ['Parent', b.height > 0 ? link('block', b.parentHash, b.parentHash, { class: 'mono' }) : 'none (genesis)', 'block-parent'],
        ['Proposer', b.proposer ? link('validator', b.proposer, b.proposer, { class: 'mono', 'data-testid': 'block-proposer' }) : 'genesis', 'block-proposer-dd'],
        ['State root', el('span', { class: 'mono' }, b.stateRoot), 'block-state-root'],
        ['Tx root', el('span', { class: 'mono' }, b.txRoot), 'block-tx-root'],
        ['Certificate', b.certificate ? 'round ' + b.certificate.round + ', ' + b.certificate.votes.length + ' signatures' : 'none (genesis)', 'block-cert'],
        ['Transactions', b.txCount, 'block-txcount'],
      ])),
      el('h2', null, 'Transactions'),
      b.txs.length ? el('ol', { 'data-testid': 'block-txs' }, ...b.txs.map((h) => el('li', { class: 'mono' }, link('tx', h, h, { 'data-testid': 'block-tx-link' })))) : el('p', { class: 'empty' }, 'no transactions'),
      b.certificate ? el('h2', null, 'Signers') : null,
      b.certificate ? el('ul', null, ...b.certificate.votes.map((v) => el('li', { class: 'mono' }, link('validator', v.validator, v.validator)))) : null,
    ].filter((x) => x !== null);
  }

  const TX_FIELDS = new Set(['hash', 'status', 'kind', 'decision', 'block', 'from', 'to', 'amount', 'denom', 'fee', 'nonce', 'validator', 'validatorPublicKey', 'transfer', 'transferKind', 'error', 'raw']);
  function txView(t) {
    if (failed(t)) return failed(t);
    const xferId = t.kind === 'xtransfer' || t.kind === 'stake' || t.kind === 'unstake' ? t.hash : t.transfer || null;
    return el('dl', { 'data-testid': 'tx-info' }, ...kv([
      ['Hash', el('span', { class: 'mono' }, t.hash), 'tx-hash'],
      ['Status', badge(t.status), 'tx-status'],
      ['Kind', t.kind + (t.decision ? ' (' + t.decision + ')' : ''), 'tx-kind'],
      ['Block', t.block ? link('block', t.block.height, String(t.block.height), { 'data-testid': 'tx-block-link' }) : 'not in a block yet', 'tx-block'],
      ['Index', t.block ? t.block.index : null, 'tx-index'],
      ['From', link('account', t.from, t.from, { class: 'mono', 'data-testid': 'tx-from-link' }), 'tx-from'],
      ['To', link('account', t.to, t.to, { class: 'mono', 'data-testid': 'tx-to-link' }), 'tx-to'],
      ['Amount', t.amount, 'tx-amount'],
      ['Denom', t.denom, 'tx-denom'],
      ['Fee', t.fee, 'tx-fee'],
      ['Nonce', t.nonce, 'tx-nonce'],
      ['Validator', t.validator ? link('validator', t.validator, t.validator, { class: 'mono' }) : null, 'tx-validator'],
      ['Cross-shard transfer', xferId ? link('xtransfer', xferId, xferId, { class: 'mono', 'data-testid': 'tx-xfer-link' }) : null, 'tx-xfer'],
      ['Error', t.error ? t.error.code + ': ' + t.error.message : null, 'tx-error'],
      // A module's message carries fields of its own (MsgDef.json): shown as given, as text.
      ...Object.keys(t).filter((k) => !TX_FIELDS.has(k) && t[k] !== null && (typeof t[k] !== 'object' || Array.isArray(t[k]))).slice(0, 24).map((k) => [k, [].concat(t[k]).map(String).join(', '), 'tx-field-' + k]),
    ]));
  }

  function accountView(address, a, h, vs) {
    const v = vs && !vs.__error ? (vs.validators || []).find((x) => x.address === address) : null;
    const home = h && !h.__error ? h.homeShard : null;
    const info = a && !a.__error
      ? kv([
          ['Balance', a.balance, 'account-balance'],
          ['Nonce', a.nonce, 'account-nonce'],
          ['Pending nonce', a.pendingNonce, 'account-pending-nonce'],
          ['Public key', a.publicKey ? el('span', { class: 'mono' }, a.publicKey) : 'not revealed yet (no transaction sent)', 'account-pubkey'],
        ])
      : [el('dt', null, 'Balance'), el('dd', { 'data-testid': 'account-error' }, a && a.__error ? a.__error.code + ': ' + a.__error.message : home !== null && home !== localShard ? 'kept by shard ' + home + ': ask a node of that shard' : '\u2014')];
    const txs = h && !h.__error ? h.txs : [];
    const balances = a && !a.__error && Array.isArray(a.balances) ? a.balances : null;
    // An LP share denom (amm/<pool>) links to its pool.
    const denomCell = (d) => (/^amm\/[0-9a-f]{16}$/.test(d) ? link('pool', d.slice(4), d, { class: 'mono' }) : el('span', { class: 'mono' }, d));
    return [
      el('dl', { 'data-testid': 'account-info' },
        el('dt', null, 'Address'), el('dd', { class: 'mono', 'data-testid': 'account-address' }, address),
        el('dt', null, 'Home shard'), el('dd', { 'data-testid': 'account-home' }, home === null ? '\u2014' : String(home) + (home === localShard ? ' (this node\'s shard)' : ' (open a node of shard ' + home + ' for its balance)')),
        ...info,
        el('dt', null, 'Validator'), el('dd', null, v ? link('validator', address, v.status + ', stake ' + v.stake, { 'data-testid': 'account-validator-link' }) : 'no'),
      ),
      balances ? el('h2', null, 'Balances ', el('small', null, 'every denom the account holds')) : null,
      balances ? el('table', { 'data-testid': 'account-balances' },
        el('thead', null, el('tr', null, el('th', null, 'Denom'), el('th', { class: 'num' }, 'Amount'))),
        el('tbody', null, ...(balances.length ? balances.map((x) => el('tr', { 'data-testid': 'balance-row', 'data-denom': x.denom }, td(denomCell(x.denom)), num(x.amount, { 'data-testid': 'balance-amount' }))) : [emptyRow(2, 'holds nothing')]))) : null,
      el('h2', null, 'Recent transactions ', el('small', null, 'finalized on this shard, newest first (a bounded recent history)')),
      el('table', { 'data-testid': 'account-txs' },
        el('thead', null, el('tr', null, el('th', null, 'Hash'), el('th', null, 'Kind'), el('th', null, 'Side'), el('th', { class: 'num' }, 'Block'))),
        el('tbody', null, ...(txs.length ? txs.map((t) => el('tr', { 'data-testid': 'account-tx-row', 'data-hash': t.hash },
          td(link('tx', t.hash, short(t.hash, 20)), { class: 'mono', title: t.hash }),
          td(t.kind),
          el('td', null, badge(t.direction)),
          num(link('block', t.height, String(t.height))),
        )) : [emptyRow(4, 'no transactions of this account seen recently')]))),
    ].filter((x) => x !== null);
  }

  function validatorView(v) {
    if (failed(v)) return failed(v);
    const life = v.lifetime;
    return el('dl', { 'data-testid': 'validator-info' }, ...kv([
      ['Address', el('span', { class: 'mono' }, v.address), 'validator-address'],
      ['Status', badge(v.status), 'validator-status'],
      ['Stake', v.stake, 'validator-stake'],
      ['Shard this epoch', v.shard, 'validator-shard'],
      ['Home account', v.home ? link('account', v.home, v.home, { class: 'mono' }) : null, 'validator-home'],
      ['Account', link('account', v.address, 'its own address', { 'data-testid': 'validator-account-link' }), 'validator-account'],
      ['Activation epoch', v.activationEpoch, 'validator-activation'],
      ['Exit epoch', v.exitEpoch, 'validator-exit'],
      ['Rewards', v.rewards, 'validator-rewards'],
      ['Slashed', v.slashed === null ? null : String(v.slashed), 'validator-slashed'],
      ['Participation', life && life.rate !== null && life.rate !== undefined ? Math.round(life.rate * 100) + '%' : null, 'validator-participation'],
      ['Public key', v.publicKey ? el('span', { class: 'mono' }, short(v.publicKey, 64)) : null, 'validator-pubkey'],
    ]));
  }

  function xferView(x) {
    if (failed(x)) return failed(x);
    return [
      el('dl', { 'data-testid': 'xfer-info' }, ...kv([
        ['Id', el('span', { class: 'mono' }, x.id), 'xfer-detail-id'],
        ['Status', badge(x.status), 'xfer-detail-status'],
        ['Kind', x.kind, 'xfer-kind'],
        ['Route', 'shard ' + shardName(x.sourceShard) + ' \u2192 ' + (x.destinationShard === BEACON_SHARD ? 'beacon' : 'shard ' + x.destinationShard), 'xfer-route'],
        ['From', link('account', x.from, x.from, { class: 'mono' }), 'xfer-from'],
        ['To', link('account', x.to, x.to, { class: 'mono' }), 'xfer-to'],
        ['Amount', x.amount, 'xfer-amount'],
        ['Deadline slot', x.deadlineSlot, 'xfer-deadline'],
        ['Role of this shard', x.role, 'xfer-role'],
        ['Outcome', x.outcome, 'xfer-outcome'],
        ['Source transaction', x.sourceShard === localShard ? link('tx', x.id, short(x.id, 20)) : 'on shard ' + shardName(x.sourceShard), 'xfer-tx'],
      ])),
      el('h2', null, 'Phases ', el('small', null, 'as recorded on this shard')),
      x.phases.length
        ? el('ol', { 'data-testid': 'xfer-detail-phases' }, ...x.phases.map((p) => el('li', null, p.phase + (p.decision ? ' ' + p.decision : '') + (p.reason ? ' (' + p.reason + ')' : '') + ' ', p.height !== undefined && p.shard === localShard ? link('block', p.height, 'block ' + p.height) : p.height !== undefined ? 'block ' + p.height + ' of shard ' + p.shard : '')))
        : el('p', { class: 'empty' }, 'none yet'),
    ];
  }

  /** The search page: one match (or one thing under several names) opens it; several are listed. */
  function searchView(q) {
    return {
      build() {
        $('view').replaceChildren(el('section', { class: 'wide', 'data-testid': 'search-results' }, el('h2', null, 'Search: ', el('span', { class: 'mono' }, q)), el('div', { id: 'detail' }, el('p', { class: 'empty' }, 'searching\u2026'))));
      },
      jobs(n) {
        if (n > 0) return [];
        return [[['/v1/search?q=' + encodeURIComponent(q)], ([r]) => {
          const ids = new Set(r.matches.map((m) => m.id));
          const pick = r.matches.length === 1 ? r.matches[0] : ids.size === 1 ? r.matches.find((m) => m.kind === 'tx') || r.matches[0] : null;
          if (pick) { location.replace('#/' + pick.kind + '/' + encodeURIComponent(pick.id)); return; }
          $('detail').replaceChildren(r.matches.length
            ? el('ul', { class: 'matches' }, ...r.matches.map((m) => el('li', null, link(m.kind, m.id, m.kind + ' ' + short(m.id, 24), { 'data-testid': 'search-match' }), ' \u00b7 ' + m.label)))
            : el('p', { class: 'empty', 'data-testid': 'search-none' }, r.hint));
        }]];
      },
    };
  }

  // ------------------------------------------------------------------ DeFi: pools and markets

  const PRICE_DIGITS = 18;
  /** A 1e18 fixed-point decimal string shown with at most d decimals (exact: BigInt, no float rounding). */
  function fixed18(v, d) {
    if (typeof v !== 'string' || !/^[0-9]+$/.test(v)) return null;
    const one = 10n ** BigInt(PRICE_DIGITS);
    const x = BigInt(v);
    const frac = (x % one).toString().padStart(PRICE_DIGITS, '0').slice(0, d === undefined ? 8 : d).replace(/0+$/, '');
    return (x / one).toString() + (frac ? '.' + frac : '');
  }
  /** The same as a float, for charts only. */
  const float18 = (v) => (typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(BigInt(v) / 10n ** 6n) / 1e12 : null);
  const bps = (b) => (b === null || b === undefined ? null : b + ' bps (' + (b / 100) + '%)');
  /** The query route is not served (this app has no such module, or an older node): an empty state, not an error. */
  const absent = (r) => r && r.__error && r.__error.status === 404 && !/^(AMM|DEX)_/.test(r.__error.code);

  /**
   * The time-weighted average of the recorded (slot, price) points, oldest first: each price holds
   * until the next point (Uniswap's TWAP over the ring's window); null with fewer than two slots.
   */
  function twap(points) {
    const pts = points.filter((p) => /^[0-9]+$/.test(p.slot) && /^[0-9]+$/.test(p.price));
    if (pts.length < 2) return null;
    let acc = 0n;
    for (let i = 0; i + 1 < pts.length; i++) acc += BigInt(pts[i].price) * (BigInt(pts[i + 1].slot) - BigInt(pts[i].slot));
    const span = BigInt(pts[pts.length - 1].slot) - BigInt(pts[0].slot);
    return span > 0n ? { price: (acc / span).toString(), from: pts[0].slot, to: pts[pts.length - 1].slot } : null;
  }

  function poolsView(r) {
    const pools = r && !r.__error ? r.pools : [];
    const why = absent(r) ? 'no pools: this node serves no AMM queries' : r && r.__error ? r.__error.code + ': ' + r.__error.message : 'no pools on this shard yet';
    const rows = pools.map((p) =>
      el('tr', { 'data-testid': 'pool-row', 'data-id': p.id },
        td(link('pool', p.id, p.id, { 'data-testid': 'pool-link' }), { class: 'mono' }),
        td(p.base + ' / ' + p.quote, { 'data-testid': 'pool-pair' }),
        num(p.reserveBase), num(p.reserveQuote),
        num(p.feeBps + ' bps' + (p.pendingFee ? ' \u2192 ' + p.pendingFee.feeBps : '')),
        num(fixed18(p.spotPrice, 6), { 'data-testid': 'pool-price' }),
        num(p.totalShares),
        num(p.volume24h ? p.volume24h.base : null),
      ));
    return [
      el('p', { class: 'note' }, 'Constant-product pools of this node\'s shard' + (localShard === null ? '' : ' (' + localShard + ')') + '; a node of another shard lists that shard\'s. Spot price: quote per base.'),
      el('table', { 'data-testid': 'pools-table' },
        el('thead', null, el('tr', null, ...['Pool', 'Pair (base / quote)', 'Reserve base', 'Reserve quote', 'Fee', 'Spot price', 'Total shares', '24 h volume (base)'].map((h, i) => el('th', { class: i >= 2 ? 'num' : null }, h)))),
        el('tbody', null, ...(rows.length ? rows : [emptyRow(8, why)]))),
      r && r.more ? el('p', { class: 'note' }, 'Only the first ' + pools.length + ' pools are listed.') : null,
    ].filter((x) => x !== null);
  }

  function poolView(p) {
    if (failed(p)) return failed(p);
    const points = p.prices || [];
    const t = twap(points);
    const unit = p.quote + '/' + p.base;
    const box = chartBox('Spot price', 'pool-chart', points.length ? 'slots ' + points[0].slot + '\u2013' + points[points.length - 1].slot + ', one point per block that moved it' : 'no point recorded yet');
    // Scaled to the points' range, not from zero (a price moves by fractions): the labels say the real figures.
    const vals = points.map((x) => float18(x.price));
    const lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 0;
    const floor = hi > lo ? lo - (hi - lo) * 0.1 : 0;
    // One point is a price held since its slot: drawn as a flat line (a lone point draws nothing).
    drawChart(box, [{ name: 'spot price (' + unit + ')', values: (vals.length === 1 ? [vals[0], vals[0]] : vals).map((v) => v - floor) }], unit, 6);
    if (vals.length) {
      box.querySelector('.val').textContent = fixed18(points[points.length - 1].price, 6) + ' ' + unit;
      box.querySelector('.max').textContent = 'range ' + fixed18(points.reduce((m, x) => (BigInt(x.price) < BigInt(m) ? x.price : m), points[0].price), 6) + '\u2013' + fixed18(points.reduce((m, x) => (BigInt(x.price) > BigInt(m) ? x.price : m), points[0].price), 6);
    }
    return [
      el('dl', { 'data-testid': 'pool-info' }, ...kv([
        ['Pool', el('span', { class: 'mono' }, p.id), 'pool-id'],
        ['Shard', p.shard, 'pool-shard'],
        ['Pair', p.base + ' / ' + p.quote, 'pool-pair'],
        ['Reserves', p.reserveBase + ' ' + p.base + ' \u00b7 ' + p.reserveQuote + ' ' + p.quote, 'pool-reserves'],
        ['Total shares', p.totalShares + ' (' + p.lockedShares + ' locked forever)', 'pool-shares'],
        ['LP share denom', el('span', { class: 'mono' }, p.lpDenom), 'pool-lp'],
        ['Spot price', fixed18(p.spotPrice, 8) === null ? null : fixed18(p.spotPrice, 8) + ' ' + unit, 'pool-spot'],
        ['TWAP (recorded points)', t ? fixed18(t.price, 8) + ' ' + unit + ', slots ' + t.from + '\u2013' + t.to : 'needs two recorded points', 'pool-twap'],
        ['Cumulative price', el('span', { class: 'mono' }, p.cumulativePrice), 'pool-cumulative'],
        ['Fee', bps(p.feeBps), 'pool-fee'],
        ['Pending fee change', p.pendingFee ? bps(p.pendingFee.feeBps) + ', committed at slot ' + p.pendingFee.committedSlot : 'none', 'pool-pending-fee'],
        ['24 h volume', p.volume24h ? p.volume24h.base + ' ' + p.base + ' \u00b7 ' + p.volume24h.quote + ' ' + p.quote : null, 'pool-volume'],
        ['24 h fees', p.fees24h ? p.fees24h.base + ' ' + p.base + ' \u00b7 ' + p.fees24h.quote + ' ' + p.quote : null, 'pool-fees'],
        ['Admin', addrLink(p.admin, 'pool-admin'), 'pool-admin-dd'],
        ['Created at slot', p.createdSlot, 'pool-created'],
        ['Last update slot', p.lastUpdateSlot, 'pool-updated'],
      ])),
      el('h2', null, 'Price ', el('small', null, 'the pool\'s recorded (slot, price) points, oldest first')),
      el('div', { class: 'charts' }, box),
    ];
  }

  function marketsView(r) {
    const markets = r && !r.__error ? r.markets : [];
    const why = absent(r) ? 'no markets: this node serves no DEX queries' : r && r.__error ? r.__error.code + ': ' + r.__error.message : 'no markets on this shard yet';
    const rows = markets.map((m) =>
      el('tr', { 'data-testid': 'market-row', 'data-id': m.id },
        td(link('market', m.id, short(m.id, 16), { 'data-testid': 'market-link' }), { class: 'mono', title: m.id }),
        td(m.base + ' / ' + m.quote, { 'data-testid': 'market-pair' }),
        num(m.lastPrice === '0' ? null : m.lastPrice, { 'data-testid': 'market-row-price' }),
        num(m.tickSize), num(m.lotSize), num(m.minNotional), num(m.openOrders), num(m.trades),
        el('td', null, badge(m.paused ? 'paused' : 'trading')),
      ));
    return [
      el('p', { class: 'note' }, 'Spot markets of this node\'s shard' + (localShard === null ? '' : ' (' + localShard + ')') + '; prices in quote base units per base unit, one batch auction per block.'),
      el('table', { 'data-testid': 'markets-table' },
        el('thead', null, el('tr', null, ...['Market', 'Pair (base / quote)', 'Last price', 'Tick', 'Lot', 'Min notional', 'Open orders', 'Trades', 'Status'].map((h, i) => el('th', { class: i >= 2 && i <= 7 ? 'num' : null }, h)))),
        el('tbody', null, ...(rows.length ? rows : [emptyRow(9, why)]))),
    ];
  }

  /** A horizontal bar (SVG: no inline style, which the page's CSP forbids) of v out of max. */
  function bar(v, max, cls) {
    const svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('viewBox', '0 0 100 10');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('class', 'bar');
    const r = document.createElementNS(SVGNS, 'rect');
    r.setAttribute('class', cls);
    r.setAttribute('height', '10');
    r.setAttribute('width', max > 0 ? String(Math.max(1, Math.round((v / max) * 100))) : '0');
    svg.append(r);
    return svg;
  }

  /** Depth: asks above (best, the lowest, nearest the spread), bids below; bars by cumulative quantity. */
  function depthTable(book) {
    const side = (levels) => { let c = 0n; return levels.map((l) => { c += BigInt(l.quantity); return Object.assign({ cum: c }, l); }); };
    const asks = side(book.asks || []);
    const bids = side(book.bids || []);
    const max = Number([...asks, ...bids].reduce((m, l) => (l.cum > m ? l.cum : m), 0n));
    const row = (l, s) => el('tr', { 'data-testid': 'depth-row', 'data-side': s, 'data-price': l.price },
      el('td', null, badge(s === 'ask' ? 'ask' : 'bid')), num(l.price), num(l.quantity), num(l.orders), num(l.cum.toString()), el('td', null, bar(Number(l.cum), max, s)));
    const rows = [...asks.slice().reverse().map((l) => row(l, 'ask'))];
    const best = (xs) => (xs.length ? xs[0].price : null);
    rows.push(el('tr', { class: 'spread' }, el('td', { colspan: 6 }, 'best ask ' + (best(asks) || '\u2014') + ' \u00b7 best bid ' + (best(bids) || '\u2014') + ' \u00b7 last ' + (book.lastPrice && book.lastPrice !== '0' ? book.lastPrice : '\u2014'))));
    rows.push(...bids.map((l) => row(l, 'bid')));
    return el('table', { 'data-testid': 'market-depth' },
      el('thead', null, el('tr', null, ...['Side', 'Price', 'Quantity', 'Orders', 'Cumulative', 'Depth'].map((h, i) => el('th', { class: i >= 1 && i <= 4 ? 'num' : null }, h)))),
      el('tbody', null, ...(asks.length || bids.length ? rows : [emptyRow(6, 'the book is empty')])));
  }

  const TRADES_SHOWN = 50;
  function marketView(m, book, trades) {
    if (failed(m)) return failed(m);
    const ts = trades && !trades.__error ? trades.trades.slice(0, TRADES_SHOWN) : [];
    return [
      el('dl', { 'data-testid': 'market-info' }, ...kv([
        ['Market', el('span', { class: 'mono' }, m.id), 'market-id'],
        ['Shard', m.shard, 'market-shard'],
        ['Pair', m.base + ' / ' + m.quote, 'market-pair-dd'],
        ['Status', badge(m.paused ? 'paused' : 'trading', 'market-paused'), 'market-status'],
        ['Last clearing price', m.lastPrice === '0' ? 'no trade yet' : m.lastPrice + ' ' + m.quote + ' per ' + m.base, 'market-last-price'],
        ['Tick size', m.tickSize, 'market-tick'],
        ['Lot size', m.lotSize, 'market-lot'],
        ['Min notional', m.minNotional, 'market-min-notional'],
        ['Open orders', m.openOrders, 'market-open'],
        ['Trades', m.trades, 'market-trades-count'],
        ['Admin', addrLink(m.admin, 'market-admin'), 'market-admin-dd'],
      ])),
      el('h2', null, 'Depth ', el('small', null, 'aggregated price levels, best nearest the spread')),
      book && !book.__error ? depthTable(book) : failed(book) || el('p', { class: 'empty' }, 'no book'),
      el('h2', null, 'Recent trades ', el('small', null, 'clearing events, newest first' + (trades && !trades.__error && trades.trades.length > TRADES_SHOWN ? ' (the newest ' + TRADES_SHOWN + ')' : ''))),
      el('table', { 'data-testid': 'market-trades' },
        el('thead', null, el('tr', null, ...['#', 'Price', 'Quantity', 'Height'].map((h) => el('th', { class: 'num' }, h)))),
        el('tbody', null, ...(ts.length ? ts.map((t) => el('tr', { 'data-testid': 'trade-row', 'data-seq': t.seq },
          num(t.seq), num(t.price), num(t.quantity), num(link('block', t.height, String(t.height))))) : [emptyRow(4, trades && trades.__error ? trades.__error.code + ': ' + trades.__error.message : 'no trades yet')]))),
    ];
  }

  // ------------------------------------------------------------------ faucet

  const ADDRESS_RE = /^qn[0-9a-f]{40}$/;
  /** Polls of a drip request's status after its 202 (about a minute). */
  const FAUCET_FOLLOW = 60;
  let faucetSeq = 0;

  async function post(path) {
    const r = await fetch(path, { method: 'POST', cache: 'no-store', headers: { accept: 'application/json' } });
    let body = null;
    try { body = await r.json(); } catch (e) { throw new ApiError(r.status, 'HTTP_' + r.status, path + ': HTTP ' + r.status + ' (not JSON)'); }
    if (!r.ok) {
      const code = (body && body.error && body.error.code) || 'HTTP_' + r.status;
      throw new ApiError(r.status, code, (body && body.error && body.error.message) || path + ': ' + code);
    }
    return body;
  }

  function faucetSay(cls, ...kids) {
    const s = $('faucet-status');
    s.className = 'faucet-status' + (cls ? ' ' + cls : '');
    s.setAttribute('data-state', cls || 'busy');
    s.replaceChildren(...kids);
  }

  /** The account the page shows, to prefill the form with. */
  function viewedAccount() {
    const m = /^#\/account\/([^/]+)$/.exec(location.hash || '');
    try { return m ? decodeURIComponent(m[1]) : ''; } catch (e) { return ''; }
  }

  /** Follow the drip request on this node (its shard holds it) until it is final or rejected; a newer request stops it. */
  async function followDrip(r, seq) {
    for (let i = 0; i < FAUCET_FOLLOW && seq === faucetSeq; i++) {
      await new Promise((res) => setTimeout(res, POLL_MS));
      if (seq !== faucetSeq) return;
      let t;
      try { t = await get('/v1/txs/' + encodeURIComponent(r.hash)); } catch (e) { continue; }
      if (seq !== faucetSeq) return;
      if (t.status === 'rejected' || t.error) {
        faucetSay('err', 'drip request ', link('tx', r.hash, short(r.hash, 16), { class: 'mono', 'data-testid': 'faucet-tx-link' }), ' ' + t.status + ': ' + (t.error ? t.error.code + ': ' + t.error.message : 'rejected'));
        return;
      }
      faucetSay(t.status === 'final' ? 'ok' : '', 'drip request ', link('tx', r.hash, short(r.hash, 16), { class: 'mono', 'data-testid': 'faucet-tx-link' }), ' for ', addrLink(r.to), ': ' + t.status + (t.status === 'final' ? (r.shard === undefined ? '' : ' (asked through shard ' + r.shard + ')') : '\u2026'));
      if (t.status === 'final') return;
    }
  }

  $('faucet').addEventListener('click', () => {
    const panel = $('faucet-panel');
    const open = panel.hidden;
    panel.hidden = !open;
    $('faucet').setAttribute('aria-expanded', String(open));
    if (open) {
      const a = viewedAccount();
      if (a) $('faucet-address').value = a;
      $('faucet-address').focus();
      showFaucetTerms();
    }
  });

  /** The faucet's terms from its module's status query, read each time the form opens. */
  async function showFaucetTerms() {
    const t = $('faucet-terms');
    try {
      const f = await get('/v1/faucet/status');
      t.textContent = 'drips ' + f.drip + ' qfc to an address at most once per ' + f.cooldownSlots + ' slots, ' + f.capPerAddress + ' in all; the faucet lives on shard ' + f.shard +
        (f.available !== null && f.available !== undefined ? ' and has ' + f.available + ' available' : '') + '.';
    } catch (e) {
      t.textContent = e.status === 404 ? 'this chain has no faucet module' : 'faucet status: ' + (e.code || 'ERROR') + ': ' + e.message;
    }
  }
  $('faucet-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const a = $('faucet-address').value.trim().toLowerCase();
    const seq = ++faucetSeq;
    if (!ADDRESS_RE.test(a)) { faucetSay('err', 'BAD_REQUEST: an address is qn followed by 40 hex characters'); return; }
    const btn = $('faucet-submit');
    btn.disabled = true;
    faucetSay('', 'asking the faucet for ' + shortAddr(a) + '\u2026');
    try {
      const r = await post('/v1/faucet/' + encodeURIComponent(a));
      if (seq !== faucetSeq) return;
      faucetSay('ok', 'drip requested: ', link('tx', r.hash, short(r.hash, 16), { class: 'mono', 'data-testid': 'faucet-tx-link' }), ' for ', addrLink(r.to), ' (pending)');
      followDrip(r, seq);
    } catch (e) {
      if (seq !== faucetSeq) return;
      faucetSay('err', el('span', { 'data-testid': 'faucet-error-code' }, e.code || 'ERROR'), ': ' + e.message);
    } finally {
      btn.disabled = false;
    }
  });

  // ------------------------------------------------------------------ routing and polling

  function route() {
    const parts = (location.hash || '#/').replace(/^#\/?/, '').split('/');
    const kind = parts[0] || '';
    let id = '';
    try { id = decodeURIComponent(parts.slice(1).join('/')).trim(); } catch (e) { id = ''; }
    const e = encodeURIComponent(id);
    $('search-input').value = ['block', 'tx', 'account', 'validator', 'xtransfer', 'search'].includes(kind) ? id : '';
    switch (kind) {
      case 'block': return detail('Block ' + id, 'block-page', ['/v1/blocks/' + e], blockView);
      case 'tx': return detail('Transaction', 'tx-page', ['/v1/txs/' + e], txView);
      // The balance is asked of this node only when the account lives on its shard (another shard's node answers an error).
      case 'account': return detail('Account', 'account-page', async () => {
        const [h, vs] = await Promise.all([tryGet('/v1/accounts/' + e + '/txs'), tryGet('/v1/validators')]);
        const a = h && !h.__error && h.homeShard === h.shard ? await tryGet('/v1/accounts/' + e) : null;
        return [a, h, vs];
      }, (a, h, vs) => accountView(id, a, h, vs));
      case 'validator': return detail('Validator', 'validator-page', ['/v1/validators/' + e], validatorView);
      case 'xtransfer': return detail('Cross-shard transfer', 'xfer-page', ['/v1/xtransfers/' + e], xferView);
      case 'search': return searchView(id);
      case 'pools': return detail('Pools', 'pools-page', ['/v1/amm/list'], poolsView);
      case 'pool': return detail('Pool ' + id, 'pool-page', ['/v1/amm/pools/' + e], poolView);
      case 'markets': return detail('Markets', 'markets-page', ['/v1/dex/list'], marketsView);
      case 'market': return detail('Market', 'market-page', ['/v1/dex/markets/' + e, '/v1/dex/book/' + e, '/v1/dex/trades/' + e], marketView);
      default: return overview;
    }
  }

  function navigate() {
    gen++;
    view = route();
    view.build();
    $('view').setAttribute('data-view', (location.hash || '#/').split('/')[1] || 'overview');
    window.scrollTo(0, 0);
    clearTimeout(timer);
    tick(0);
  }

  let timer = null;
  let n = 0;
  async function tick(forced) {
    const myGen = gen;
    const k = forced === 0 ? 0 : n;
    n = forced === 0 ? 1 : n + 1;
    // The status line (shard, slot) is fetched on every view; the view's own jobs are added.
    const jobs = [['/v1/status', view === overview ? renderStatus : (s) => { localShard = s.shard; headHeight = s.finalizedHeight; $('title-sub').textContent = s.chainId + ' \u00b7 shard ' + s.shard + ' \u00b7 ' + s.role; }]].concat(view.jobs(k));
    polls++;
    // A job's source is a path, several paths (fetched together, a 4xx shown as an answer), or a loader.
    const results = await Promise.allSettled(jobs.map(([p]) => (typeof p === 'function' ? p() : Array.isArray(p) ? Promise.all(p.map(tryGet)) : get(p))));
    if (myGen !== gen) return;
    const errors = [];
    results.forEach((res, i) => {
      if (res.status === 'fulfilled') {
        try {
          jobs[i][1](res.value);
        } catch (e) {
          errors.push((typeof jobs[i][0] === 'string' ? jobs[i][0] : view === overview ? 'overview' : 'page') + ': cannot render: ' + e.message);
        }
      } else {
        errors.push(res.reason && res.reason.message ? res.reason.message : String(res.reason));
      }
    });
    if (errors.length < results.length) lastOk = Date.now();
    $('error').textContent = errors.join(' \u00b7 ');
    setLive(errors.length, results.length, polls, lastOk);
    timer = setTimeout(tick, POLL_MS);
  }

  $('search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = $('search-input').value.trim();
    if (q) location.hash = '#/search/' + encodeURIComponent(q);
  });
  window.addEventListener('hashchange', navigate);
  navigate();
})();
`;

const BODY = String.raw`<header>
<h1><a href="#/" data-testid="home-link">Quantum Nexus explorer</a></h1>
<span class="sub" id="title-sub">connecting&hellip;</span>
<span class="sub" id="slot" data-testid="slot"></span>
<form id="search" class="search" role="search" data-testid="search-form"><input id="search-input" data-testid="search-input" type="search" maxlength="130" placeholder="address, tx hash, block height or hash, transfer id" aria-label="Search" autocomplete="off" spellcheck="false"><button type="submit">Search</button></form>
<nav class="nav" data-testid="nav"><a href="#/pools" data-testid="nav-pools">Pools</a><a href="#/markets" data-testid="nav-markets">Markets</a></nav>
<button class="btn" id="faucet" type="button" aria-expanded="false" aria-controls="faucet-panel" title="ask the devnet's faucet for coins" data-testid="faucet">Faucet</button>
<span id="live" class="live" data-testid="live">connecting</span>
<div id="faucet-panel" class="faucet-panel" data-testid="faucet-panel" hidden><form id="faucet-form" data-testid="faucet-form"><input id="faucet-address" data-testid="faucet-address" type="text" maxlength="64" placeholder="address to fund (qn…, any shard)" aria-label="Address to fund" autocomplete="off" spellcheck="false"><button class="btn" id="faucet-submit" type="submit" data-testid="faucet-submit">Request coins</button></form><span id="faucet-status" class="faucet-status" data-testid="faucet-status" role="status" aria-live="polite">an address of another shard is paid through the cross-shard path</span><span id="faucet-terms" class="note" data-testid="faucet-terms"></span></div>
</header>
<main id="view" data-testid="view"></main>
<footer><span id="updated" data-testid="updated">no answer yet</span> <span id="error" data-testid="error"></span></footer>
${SVG_ANCHOR}`;

const DOC = explorerDocument('Quantum Nexus explorer', STYLE, SCRIPT, BODY);

/** The page's HTML (served as is). */
export const EXPLORER_HTML = DOC.html;

/** Only this page's own inline style and script run; it may fetch from its origin and nothing else. */
export const EXPLORER_CSP = DOC.csp;

/** `GET /explorer`: the page with its security headers. */
export function explorerPage(): RawBody {
  return explorerResponse(DOC);
}
