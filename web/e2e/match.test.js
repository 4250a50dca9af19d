// Two players in two browser contexts play through the platform in headless Chromium: register, befriend
// (live presence dots incl. away, notification badge, list and mark read), search a match (live status with
// elapsed time, estimate and level; cancel), land in the same lobby, lobby chat (the documents' LobbyChat)
// with typing indicator, reconnect, token refresh and a refused handshake (the lobby and its chat are joined
// again each time), host edits settings, ready up, the host kicks the other player (kicked view), the host
// leaves, direct chat with typing indicator and read receipt, presence going offline.
// The whole play-through runs twice: with the default transports (WebSocket after the polling
// handshake) and with `?transport=polling` (socket.io-client `transports: ['polling']`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchBrowser, screenshotDir, startServer } from './support.js';

const STEP = 15_000; // longest wait for one thing the UI should show

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// A player is one browser context (own cookies and sessionStorage) with one page.
async function newPlayer(name, query) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  const consoleLines = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    consoleLines.push(`${new Date().toISOString().slice(11, 23)} ${msg.type()}: ${msg.text()}`);
    if (consoleLines.length > 200) consoleLines.shift();
  });
  await page.goto(`${server.url}/${query}`);
  return { name, context, page, errors, consoleLines };
}

async function register(p) {
  const { page } = p;
  await page.fill('input[name=username]', p.name);
  await page.fill('input[name=email]', `${p.name}@example.test`);
  await page.fill('input[name=displayName]', p.name.replace(/_.*/, ''));
  await page.fill('input[name=password]', 'correct-horse-battery');
  await page.click('button[type=submit]');
  await page.locator('[data-testid=connection]', { hasText: 'Connected' }).waitFor({ timeout: STEP });
  p.id = (await page.locator('[data-testid=my-id]').textContent()).trim();
  assert.match(p.id, /^[0-9a-f]{24}$/);
}

const see = (page, selector, hasText) => page.locator(selector, hasText === undefined ? {} : { hasText }).first().waitFor({ timeout: STEP });
const gone = (page, selector, hasText) =>
  page.locator(selector, hasText === undefined ? {} : { hasText }).first().waitFor({ state: 'detached', timeout: STEP });

async function unreadCount(page) {
  return Number(await page.locator('[data-testid=notification-count]').textContent());
}

async function waitUntil(what, fn) {
  const deadline = Date.now() + STEP;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// armRejoin makes the page note when its socket has joined the chat again (chat:joined), so that the test
// sends the next message only once the reconnected client is back in the room: LobbyChat shows live
// messages only, and a message sent before the join is not delivered to that socket.
async function armRejoin(page, chatId) {
  await page.evaluate((id) => {
    window.rejoined = false;
    const off = window.maogaSocket.on('chat:joined', (d) => {
      if (d.chatId === id) {
        window.rejoined = true;
        off();
      }
    });
  }, chatId);
}
const rejoined = (page) => waitUntil('the lobby chat was joined again', () => page.evaluate(() => window.rejoined));

// startSearch submits the search form; the search panel replaces it (or, when the other player was already
// waiting, the lobby may come first: a match can be made within one matchmaking tick).
async function startSearch(page) {
  await page.selectOption('select[name=game]', 'arena-shooter');
  await page.selectOption('select[name=mode]', '1v1');
  await page.selectOption('select[name=region]', 'eu');
  await page.click('form.matchmaking button[type=submit]');
  await see(page, '[data-testid=matchmaking-status], [data-testid=lobby]');
}

async function playThrough(t, transport) {
  const run = transport || 'default';
  const shots = screenshotDir(run);
  const shot = (p, label) => p.page.screenshot({ path: path.join(shots, `${label}-${p.name.replace(/_.*/, '')}.png`) });
  const suffix = `${run.slice(0, 4)}${Date.now().toString(36)}`;
  const query = transport ? `?transport=${transport}` : '';
  const alice = await newPlayer(`alice_${suffix}`, query);
  const bob = await newPlayer(`bob_${suffix}`, query);
  try {
    // ── Register (each gets a welcome notification) ──
    await register(alice);
    await register(bob);
    for (const p of [alice, bob]) await p.page.evaluate(() => { const s = window.maogaSocket.socket; s.onAny((ev, d) => console.log('IN', ev, JSON.stringify(d).slice(0, 200))); s.onAnyOutgoing((ev, d) => console.log('OUT', ev, JSON.stringify(d).slice(0, 200))); });
    // The chats each page's socket has joined (chat:joined): LobbyChat shows "Connected" for the socket,
    // not for its chat:join, and a chat:typing sent before both are in the room reaches nobody.
    for (const p of [alice, bob]) {
      await p.page.evaluate(() => {
        window.chatsJoined = new Set();
        window.maogaSocket.on('chat:joined', (d) => window.chatsJoined.add(d.chatId));
      });
    }
    for (const p of [alice, bob]) {
      const name = await p.page.evaluate(() => window.maogaSocket.socket.io.engine.transport.name);
      if (transport) assert.equal(name, transport, `${p.name} transport`);
      await waitUntil(`${p.name} has an unread notification`, async () => (await unreadCount(p.page)) >= 1);
    }
    if (!transport) {
      // default transports: the client upgrades to WebSocket
      await waitUntil('alice upgraded to websocket', () =>
        alice.page.evaluate(() => window.maogaSocket.socket.io.engine.transport.name === 'websocket'),
      );
    }

    // ── Befriend: alice asks by bob's id; bob accepts from the live request list ──
    const bobUnread = await unreadCount(bob.page);
    await alice.page.fill('input[name=friendId]', bob.id);
    await alice.page.click('form.add-friend button');
    await see(alice.page, '.friends .note', 'Friend request sent');
    await see(bob.page, '.friend-request', 'alice'); // notification:new made the list reload
    await waitUntil('bob notification:count rises', async () => (await unreadCount(bob.page)) > bobUnread);
    await bob.page.locator('.friend-request button', { hasText: 'Accept' }).click();
    await see(bob.page, `.friend[data-user-id="${alice.id}"][data-status=online]`);
    await see(alice.page, `.friend[data-user-id="${bob.id}"][data-status=online] .dot.status-online`); // after friend_accepted
    // Presence beyond online/offline: bob sets himself away, then online again; alice's dot follows.
    await bob.page.selectOption('select[name=myStatus]', 'away');
    await see(alice.page, `.friend[data-user-id="${bob.id}"][data-status=away] .dot.status-away`);
    await bob.page.selectOption('select[name=myStatus]', 'online');
    await see(alice.page, `.friend[data-user-id="${bob.id}"][data-status=online] .dot.status-online`);
    // The notification list and mark-read.
    await bob.page.click('.bell');
    await see(bob.page, '.notification.is-unread', 'friend request');
    const before = await unreadCount(bob.page);
    await bob.page.locator('.notification.is-unread', { hasText: 'friend request' }).getByText('Mark read').click();
    await waitUntil('bob unread count drops after mark read', async () => (await unreadCount(bob.page)) === before - 1);
    await bob.page.locator('.notifications button', { hasText: 'Mark all read' }).click();
    await waitUntil('bob unread count is 0 after mark all read', async () => (await unreadCount(bob.page)) === 0);
    assert.equal(await bob.page.locator('.notification.is-unread').count(), 0);

    // ── Matchmaking: live status and cancel, then both search and are matched ──
    await startSearch(alice.page);
    await waitUntil('alice sees the search time grow', async () =>
      Number(await alice.page.locator('.mm-elapsed').textContent()) >= 1,
    );
    // matchmaking:status carries the estimate and the relaxation level too.
    assert.match(await alice.page.locator('.mm-estimate').textContent(), /^\d+$/);
    assert.match(await alice.page.locator('.mm-level').textContent(), /^\d+$/);
    assert.match(await alice.page.locator('.mm-status').textContent(), /^(searching|relaxing_criteria)$/);
    await alice.page.click('[data-testid=matchmaking-status] button');
    await see(alice.page, 'form.matchmaking .note', 'Search cancelled');
    await startSearch(alice.page);
    await startSearch(bob.page);
    await see(alice.page, '[data-testid=lobby]');
    await see(bob.page, '[data-testid=lobby]');
    const lobbyId = await alice.page.locator('[data-testid=lobby]').getAttribute('data-lobby-id');
    assert.equal(await bob.page.locator('[data-testid=lobby]').getAttribute('data-lobby-id'), lobbyId);
    for (const p of [alice, bob]) {
      await waitUntil(`${p.name} sees both members`, async () => (await p.page.locator('.member').count()) === 2);
      await see(p.page, '.member .tag.host');
      await see(p.page, '.lobby-chat .chat-status', 'Connected');
      await waitUntil(`${p.name} joined the lobby chat`, () =>
        p.page.evaluate((id) => window.chatsJoined.has(id), `lobby:${lobbyId}`),
      );
    }

    // ── Lobby chat (the documents' LobbyChat) with typing indicator ──
    const aliceInput = alice.page.locator('.lobby-chat input');
    await aliceInput.pressSequentially('gl hf');
    await see(bob.page, '.lobby-chat .typing-indicator', `alice_${suffix} is typing...`);
    await alice.page.click('.lobby-chat button[type=submit]');
    await gone(bob.page, '.lobby-chat .typing-indicator');
    for (const p of [alice, bob]) await see(p.page, '.lobby-chat .message-content', 'gl hf');
    await bob.page.locator('.lobby-chat input').fill('you too');
    await bob.page.press('.lobby-chat input', 'Enter');
    await see(alice.page, '.lobby-chat .message-content', 'you too');

    // ── Reconnect: the transport drops; the client reconnects and joins the lobby and its chat again ──
    const lobbyChat = `lobby:${lobbyId}`;
    await armRejoin(alice.page, lobbyChat);
    const firstSocket = await alice.page.evaluate(() => window.maogaSocket.socket.id);
    await alice.page.evaluate(() => window.maogaSocket.socket.io.engine.close());
    await see(alice.page, '[data-testid=connection]', 'Reconnecting'); // the first retry waits ≥ 0.5 s
    await see(alice.page, '.lobby-chat .chat-status', 'Disconnected');
    // With connection state recovery (RECOVERY_MAX_DISCONNECTION, on by default) the server gives the
    // socket back (same id, socket.recovered); the app joins its rooms again all the same.
    await waitUntil('alice reconnected', () =>
      alice.page.evaluate(
        (old) => {
          const s = window.maogaSocket.socket;
          return s.connected && (s.id !== old || s.recovered);
        },
        firstSocket,
      ),
    );
    await see(alice.page, '[data-testid=connection]', 'Connected');
    await rejoined(alice.page);
    await bob.page.locator('.lobby-chat input').fill('still there?');
    await bob.page.press('.lobby-chat input', 'Enter');
    await see(alice.page, '.lobby-chat .message-content', 'still there?');

    // ── Token refresh: a new access token reconnects the socket with it; rooms are joined again ──
    await armRejoin(alice.page, lobbyChat);
    const oldToken = await alice.page.evaluate(() => window.maogaSocket.socket.auth.token);
    const secondSocket = await alice.page.evaluate(() => window.maogaSocket.socket.id);
    await alice.page.click('header button[title^="Get a new access token"]');
    await waitUntil('alice reconnected with the new token', () =>
      alice.page.evaluate(
        ([tok, old]) =>
          window.maogaSocket.socket?.connected &&
          window.maogaSocket.socket.auth.token !== tok &&
          window.maogaSocket.socket.id !== old,
        [oldToken, secondSocket],
      ),
    );
    await rejoined(alice.page);
    await bob.page.locator('.lobby-chat input').fill('after refresh');
    await bob.page.press('.lobby-chat input', 'Enter');
    await see(alice.page, '.lobby-chat .message-content', 'after refresh');

    // ── A handshake refused for a bad token (as when the access token expired while offline): the app
    // refreshes the token and connects again with the new one ──
    await armRejoin(alice.page, lobbyChat);
    const thirdToken = await alice.page.evaluate(() => window.maogaSocket.socket.auth.token);
    await alice.page.evaluate(() => {
      window.maogaSocket.socket.auth.token = 'not-a-valid-token';
      window.maogaSocket.socket.io.engine.close();
    });
    await waitUntil('alice reconnected after the refused handshake', () =>
      alice.page.evaluate(
        (tok) =>
          window.maogaSocket.socket?.connected &&
          !['not-a-valid-token', tok].includes(window.maogaSocket.socket.auth.token),
        thirdToken,
      ),
    );
    await rejoined(alice.page);
    await bob.page.locator('.lobby-chat input').fill('after re-auth');
    await bob.page.press('.lobby-chat input', 'Enter');
    await see(alice.page, '.lobby-chat .message-content', 'after re-auth');
    // the list has overflowed by now and shows its newest message (scrolled to the bottom)
    await waitUntil('alice lobby chat scrolled to the newest message', () =>
      alice.page.evaluate(() => {
        const list = document.querySelector('.lobby-chat .chat-messages');
        return list.scrollHeight > list.clientHeight && list.scrollTop + list.clientHeight >= list.scrollHeight - 2;
      }),
    );

    // ── Settings: only the host edits them; the other player sees them through lobby:update ──
    const hostId = await alice.page.locator('.member:has(.tag.host)').getAttribute('data-user-id');
    const [host, guest] = hostId === alice.id ? [alice, bob] : [bob, alice];
    assert.equal(await guest.page.locator('button', { hasText: 'Edit settings' }).count(), 0, 'only the host edits settings');
    await host.page.locator('button', { hasText: 'Edit settings' }).click();
    await host.page.fill('.settings-form textarea', '{"map": "harbor", "rounds": 3}');
    await host.page.click('.settings-form button[type=submit]');
    await see(host.page, '.lobby .note', 'Settings saved');
    await see(guest.page, '.settings', 'harbor');

    // ── Ready up: both ready, the lobby becomes ready ──
    for (const p of [alice, bob]) await p.page.click('.ready-toggle');
    for (const p of [alice, bob]) {
      await waitUntil(`${p.name} sees both ready`, async () => (await p.page.locator('.member[data-ready=yes]').count()) === 2);
      await see(p.page, '.lobby-status', 'ready');
    }
    await shot(alice, '1-lobby');
    await shot(bob, '1-lobby');

    // ── The host kicks the other player ──
    assert.equal(await host.page.locator('.member .kick').count(), 1, 'the host can kick the other member');
    assert.equal(await guest.page.locator('.member .kick').count(), 0, 'only the host has kick buttons');
    await host.page.click('.member .kick');
    await see(guest.page, '.notice', 'You have been kicked from the lobby');
    await see(guest.page, 'form.matchmaking');
    await waitUntil('host sees one member', async () => (await host.page.locator('.member').count()) === 1);
    await shot(host, '2-after-kick');
    await shot(guest, '2-after-kick');
    // The host leaves too: back to the search form.
    await host.page.locator('.lobby .actions button', { hasText: 'Leave' }).click();
    await see(host.page, '.notice', 'You left the lobby');
    await see(host.page, 'form.matchmaking');

    // ── Direct chat with read receipts ──
    await alice.page.locator(`.friend[data-user-id="${bob.id}"] button`, { hasText: 'Chat' }).click();
    await bob.page.locator(`.friend[data-user-id="${alice.id}"] button`, { hasText: 'Chat' }).click();
    for (const p of [alice, bob]) {
      await waitUntil(`${p.name} direct chat ready`, () =>
        p.page.locator('[data-testid=direct-chat] input').isEnabled(),
      );
    }
    // typing indicator in the direct chat too: shown while bob's input is not empty
    await bob.page.locator('[data-testid=direct-chat] input').fill('hm');
    await see(alice.page, '[data-testid=direct-chat] .typing-indicator', `bob_${suffix} is typing...`);
    await bob.page.locator('[data-testid=direct-chat] input').fill('');
    await gone(alice.page, '[data-testid=direct-chat] .typing-indicator');
    await alice.page.locator('[data-testid=direct-chat] input').fill('rematch?');
    await alice.page.press('[data-testid=direct-chat] input', 'Enter');
    await see(bob.page, '[data-testid=direct-chat] .message-content', 'rematch?');
    await see(alice.page, '[data-testid=direct-chat] .read-receipt', 'Seen');
    await shot(alice, '3-direct-chat');

    // ── Presence: bob leaves; alice's dot goes offline ──
    await bob.context.close();
    await see(alice.page, `.friend[data-user-id="${bob.id}"][data-status=offline]`);

    assert.deepEqual(alice.errors, [], 'alice page errors');
    assert.deepEqual(bob.errors, [], 'bob page errors');
  } catch (err) {
    for (const p of [alice, bob]) await shot(p, 'failure').catch(() => {});
    err.message += `\nscreenshots: ${shots}\nserver log (last lines):\n${server.log.slice(-30).join('\n')}`;
    for (const p of [alice, bob]) err.message += `\n${p.name} console (last lines):\n${p.consoleLines.slice(-60).join('\n')}`;
    throw err;
  } finally {
    await alice.context.close().catch(() => {});
    await bob.context.close().catch(() => {});
  }
}

test('two players play through a match (default transports: websocket)', { timeout: 180_000 }, (t) => playThrough(t));

test('the same with the polling transport forced (?transport=polling)', { timeout: 180_000 }, (t) =>
  playThrough(t, 'polling'),
);
