// The app shell: log in, then keep one socket (the documents' SocketService) connected with the current
// access token. A token refresh (401 on REST, a refused handshake, or "Renew session") reconnects the
// socket with the new token; components re-join their rooms on 'connect'.
import { useCallback, useEffect, useState } from 'react';
import { getSession, logout, onSession, refreshTokens } from './services/api';
import socketService, { forcedTransports } from './services/socketService';
import { useConnectionState, useSocketEvent } from './hooks';
import AuthForm from './components/AuthForm';
import Friends from './components/Friends';
import Notifications from './components/Notifications';
import Matchmaking from './components/Matchmaking';
import LobbyView from './components/LobbyView';
import DirectChat from './components/DirectChat';

const LOBBY_KEY = 'maoga.lobby';
const STATUS_KEY = 'maoga.status';
const MY_STATUSES = ['online', 'away', 'busy', 'in-game'];

export default function App() {
  const [session, setSession] = useState(getSession);
  useEffect(() => onSession(setSession), []);

  const token = session?.accessToken;
  useEffect(() => {
    if (token) socketService.connect(token);
    else socketService.disconnect();
  }, [token]);
  useEffect(
    () =>
      socketService.onAuthError((err) => {
        console.warn('socket refused:', err.message, '- refreshing the token');
        refreshTokens().catch(() => {});
      }),
    [],
  );

  return session ? <Home me={session.user} /> : <AuthForm />;
}

const STATE_LABEL = { connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', disconnected: 'Disconnected' };

function Home({ me }) {
  const connection = useConnectionState();
  const [lobbyId, setLobbyId] = useState(() => sessionStorage.getItem(LOBBY_KEY));
  const [notice, setNotice] = useState('');
  const [chatWith, setChatWith] = useState(null);

  const enterLobby = useCallback((id) => {
    sessionStorage.setItem(LOBBY_KEY, id);
    setNotice('');
    setLobbyId(id);
  }, []);
  const leftLobby = useCallback((why) => {
    sessionStorage.removeItem(LOBBY_KEY);
    setNotice(why);
    setLobbyId(null);
  }, []);
  // My presence as friends see it (user:status). SocketService announces 'online' on every connect; a
  // chosen other status is announced again right after it.
  const [myStatus, setMyStatus] = useState(() => sessionStorage.getItem(STATUS_KEY) || 'online');
  useSocketEvent('connect', () => {
    if (myStatus !== 'online') socketService.emit('user:status', { status: myStatus });
  });
  const changeStatus = (e) => {
    const status = e.target.value;
    sessionStorage.setItem(STATUS_KEY, status);
    setMyStatus(status);
    socketService.emit('user:status', { status });
  };
  const renew = () => refreshTokens().catch((err) => setNotice(`Could not renew the session: ${err.message}`));
  const transports = forcedTransports();

  return (
    <div className="app">
      <header>
        <strong>Maoga</strong>
        <span className={`connection ${connection}`} data-testid="connection">
          {STATE_LABEL[connection]}
          {transports ? ` (${transports[0]})` : ''}
        </span>
        <span className="me">
          {me.displayName || me.username} · your id <code data-testid="my-id">{me.id}</code>
        </span>
        <select name="myStatus" aria-label="Your status" value={myStatus} onChange={changeStatus}>
          {MY_STATUSES.map((st) => (
            <option key={st} value={st}>
              {st}
            </option>
          ))}
        </select>
        <button type="button" onClick={renew} title="Get a new access token; the socket reconnects with it">
          Renew session
        </button>
        <button
          type="button"
          onClick={() => {
            sessionStorage.removeItem(LOBBY_KEY);
            sessionStorage.removeItem(STATUS_KEY);
            logout();
          }}
        >
          Log out
        </button>
      </header>
      <main>
        <aside>
          <Friends onChat={setChatWith} />
          <Notifications />
        </aside>
        <section>
          {notice && <p className="note notice">{notice}</p>}
          {lobbyId ? (
            <LobbyView key={lobbyId} lobbyId={lobbyId} me={me} onGone={leftLobby} />
          ) : (
            <Matchmaking onMatched={enterLobby} />
          )}
          {chatWith && <DirectChat key={chatWith.id} friend={chatWith} me={me} onClose={() => setChatWith(null)} />}
        </section>
      </main>
    </div>
  );
}
