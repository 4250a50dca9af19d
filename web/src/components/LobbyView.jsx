// Lobby: members with host and ready marks, ready toggle, kick (host), settings (host edits), start (host,
// when ready), leave; the documents' LobbyChat for the lobby chat. LobbyChat joins the lobby and its chat
// (and joins again after a reconnect), so this view only listens.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, userName } from '../services/api';
import socketService from '../services/socketService';
import { useSocketEvent, useUserNames } from '../hooks';
import LobbyChat from './LobbyChat';

export default function LobbyView({ lobbyId, me, onGone }) {
  const [lobby, setLobby] = useState(null);
  const [message, setMessage] = useState('');
  const [settingsText, setSettingsText] = useState('');
  const [editing, setEditing] = useState(false);

  // Leaving the view happens once, with the first reason: being kicked or leaving also makes the lobby
  // answer 403 to a reload that an event of the same change started, which must not replace the reason.
  const done = useRef(false);
  const chatPanel = useRef(null);
  useStickToBottom(chatPanel, '.chat-messages');
  const gone = useCallback(
    (why) => {
      if (done.current) return;
      done.current = true;
      onGone(why);
    },
    [onGone],
  );

  const load = useCallback(async () => {
    try {
      const { data } = await api('GET', `/lobbies/${lobbyId}`);
      if (!done.current) setLobby(data);
    } catch (err) {
      if (err.status === 404 || err.status === 403) gone(`Lobby unavailable: ${err.message}`);
      else setMessage(err.message);
    }
  }, [lobbyId, gone]);
  useEffect(() => {
    load();
  }, [load]);

  const ours = (d) => d && d.lobbyId === lobbyId;
  useSocketEvent('lobby:update', (d) => ours(d) && setLobby((prev) => ({ ...(prev || {}), ...d.update })));
  useSocketEvent('lobby:member:ready', (d) => {
    if (!ours(d)) return;
    setLobby((prev) =>
      prev && {
        ...prev,
        members: prev.members.map((m) => (m.userId === d.user.id ? { ...m, readyStatus: d.isReady } : m)),
      },
    );
  });
  useSocketEvent('lobby:member:joined', (d) => ours(d) && load());
  const memberGone = (d) => {
    if (!ours(d)) return;
    setMessage(''); // "Everyone is ready" no longer holds
    load();
  };
  useSocketEvent('lobby:member:left', (d) => {
    if (ours(d) && d.user?.id === me.id) gone('You left the lobby'); // from another tab
    else memberGone(d);
  });
  useSocketEvent('lobby:member:kicked', (d) => {
    if (ours(d) && d.userId === me.id) gone('You have been kicked from the lobby');
    else memberGone(d);
  });
  useSocketEvent('lobby:host:changed', (d) => ours(d) && setLobby((prev) => prev && { ...prev, hostId: d.hostId }));
  useSocketEvent('lobby:ready', (d) => ours(d) && setMessage('Everyone is ready'));
  useSocketEvent('lobby:kicked', (d) => ours(d) && gone(d.reason || 'You have been kicked from the lobby'));
  useSocketEvent('lobby:closed', (d) => ours(d) && gone(`Lobby closed (${d.reason})`));
  useSocketEvent('error', (e) => e && e.code && setMessage(`${e.code}: ${e.message}`));

  const members = (lobby?.members || []).filter((m) => m.status === 'joined');
  const name = useUserNames(
    members.map((m) => m.userId),
    userName,
  );
  if (!lobby) return <div className="panel lobby">Loading lobby…</div>;

  const isHost = lobby.hostId === me.id;
  const mine = members.find((m) => m.userId === me.id);
  const setReady = () => socketService.emit('lobby:ready', { lobbyId, isReady: !mine?.readyStatus });
  const kick = (userId) => socketService.emit('lobby:kick', { lobbyId, userId });
  const leave = async () => {
    done.current = true; // the events of our own leave (member left, closed) must not name another reason
    try {
      await api('POST', `/lobbies/${lobbyId}/leave`);
    } catch (err) {
      if (err.status !== 404) {
        done.current = false;
        setMessage(err.message);
        return;
      }
    }
    onGone('You left the lobby');
  };
  const start = async () => {
    try {
      await api('POST', `/lobbies/${lobbyId}/start`);
    } catch (err) {
      setMessage(err.message);
    }
  };
  const saveSettings = async (e) => {
    e.preventDefault();
    let settings;
    try {
      settings = JSON.parse(settingsText || '{}');
    } catch {
      setMessage('Settings must be a JSON object');
      return;
    }
    try {
      const { data } = await api('PATCH', `/lobbies/${lobbyId}`, { settings });
      setLobby(data);
      setEditing(false);
      setMessage('Settings saved');
    } catch (err) {
      setMessage(err.message);
    }
  };

  return (
    <div className="lobby-layout">
      <div className="panel lobby" data-testid="lobby" data-lobby-id={lobbyId}>
        <h2>
          Lobby · {lobby.gameId} / {lobby.gameMode} · <span className="lobby-status">{lobby.status}</span>
        </h2>
        <p className="muted">
          {members.length} of {lobby.capacity?.max} players (at least {lobby.capacity?.min})
        </p>
        <ul className="member-list">
          {members.map((m) => (
            <li key={m.userId} className="member" data-user-id={m.userId} data-ready={m.readyStatus ? 'yes' : 'no'}>
              <span className="member-name">{name(m.userId)}</span>
              {m.userId === lobby.hostId && <span className="tag host">host</span>}
              {m.readyStatus ? <span className="tag ready">ready</span> : <span className="tag">not ready</span>}
              {isHost && m.userId !== me.id && (
                <button type="button" className="kick" onClick={() => kick(m.userId)}>
                  Kick
                </button>
              )}
            </li>
          ))}
        </ul>
        <div className="actions">
          <button type="button" className="ready-toggle" onClick={setReady}>
            {mine?.readyStatus ? 'Not ready' : 'Ready'}
          </button>{' '}
          {isHost && lobby.status === 'ready' && (
            <button type="button" onClick={start}>
              Start
            </button>
          )}{' '}
          <button type="button" onClick={leave}>
            Leave
          </button>
        </div>
        <h3>Settings</h3>
        {editing ? (
          <form onSubmit={saveSettings} className="settings-form">
            <textarea rows={4} value={settingsText} onChange={(e) => setSettingsText(e.target.value)} />
            <button type="submit">Save</button>{' '}
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <>
            <pre className="settings">{JSON.stringify(lobby.settings || {}, null, 2)}</pre>
            {isHost && (
              <button
                type="button"
                onClick={() => {
                  setSettingsText(JSON.stringify(lobby.settings || {}, null, 2));
                  setEditing(true);
                }}
              >
                Edit settings
              </button>
            )}
          </>
        )}
        {message && <p className="note">{message}</p>}
      </div>
      <div className="panel" ref={chatPanel}>
        <h2>Lobby chat</h2>
        <LobbyChat lobbyId={lobbyId} />
      </div>
    </div>
  );
}

// useStickToBottom keeps the newest chat message in view: the documents' LobbyChat (kept as written) does
// not scroll its list, so this watches the list from outside and scrolls it down when messages arrive.
function useStickToBottom(panel, selector) {
  useEffect(() => {
    const root = panel.current;
    if (!root) return undefined;
    const observer = new MutationObserver(() => {
      const list = root.querySelector(selector);
      if (list) list.scrollTop = list.scrollHeight;
    });
    observer.observe(root, { childList: true, subtree: true });
    return () => observer.disconnect();
  });
}
