// Find a match: game, mode and region; live matchmaking:status; cancel; matchmaking:matched → lobby.
import { useEffect, useState } from 'react';
import { api } from '../services/api';
import socketService from '../services/socketService';
import { useSocketEvent } from '../hooks';

const REGIONS = ['eu', 'na', 'asia', 'sa', 'oce'];
const REQUEST_KEY = 'maoga.matchRequest';

export default function Matchmaking({ onMatched }) {
  const [games, setGames] = useState([]);
  const [gameId, setGameId] = useState('');
  const [mode, setMode] = useState('');
  const [region, setRegion] = useState(REGIONS[0]);
  const [requestId, setRequestId] = useState(() => sessionStorage.getItem(REQUEST_KEY));
  const [status, setStatus] = useState(null);
  const [message, setMessage] = useState('');

  useEffect(() => {
    api('GET', '/games')
      .then(({ data }) => {
        setGames(data);
        if (data[0]) {
          setGameId(data[0].id);
          setMode(data[0].modes[0]?.id || '');
        }
      })
      .catch((err) => setMessage(err.message));
  }, []);

  const track = (id) => {
    setRequestId(id);
    if (id) sessionStorage.setItem(REQUEST_KEY, id);
    else sessionStorage.removeItem(REQUEST_KEY);
  };
  // Follow the request over the socket, also again after a reconnect.
  useEffect(() => {
    if (requestId) socketService.subscribeToMatchmaking(requestId);
  }, [requestId]);
  useSocketEvent('connect', () => {
    if (requestId) socketService.subscribeToMatchmaking(requestId);
  });

  const mine = (d) => d && d.requestId === requestId;
  useSocketEvent('matchmaking:status', (d) => mine(d) && setStatus(d));
  useSocketEvent('matchmaking:matched', (d) => {
    if (!d || !d.lobbyId) return;
    track(null);
    setStatus(null);
    onMatched(d.lobbyId);
  });
  useSocketEvent('matchmaking:cancelled', (d) => {
    if (!mine(d)) return;
    track(null);
    setStatus(null);
    setMessage('Search cancelled');
  });
  useSocketEvent('matchmaking:expired', (d) => {
    if (!mine(d)) return;
    track(null);
    setStatus(null);
    setMessage('No match found in time; try again');
  });
  useSocketEvent('matchmaking:error', (d) => {
    if (!mine(d)) return;
    setMessage(`${d.code}: ${d.message}`);
    if (d.code !== 'CANCEL_ERROR') track(null); // the request is gone or no longer ours to follow
  });

  const game = games.find((g) => g.id === gameId);
  const find = async (e) => {
    e.preventDefault();
    setMessage('');
    try {
      const { data } = await api('POST', '/matchmaking', { gameId, gameMode: mode, region });
      setStatus({ status: data.status, searchTimeElapsed: 0 });
      track(data.matchRequestId);
    } catch (err) {
      setMessage(err.message);
    }
  };
  const cancel = () => socketService.emit('matchmaking:cancel', { requestId });

  if (requestId) {
    return (
      <div className="panel matchmaking searching" data-testid="matchmaking-status">
        <h2>Searching for a match…</h2>
        <p>
          Status: <b className="mm-status">{status?.status || 'searching'}</b>
        </p>
        <p>
          Elapsed: <span className="mm-elapsed">{status?.searchTimeElapsed ?? 0}</span> s · estimated wait{' '}
          <span className="mm-estimate">{status?.estimatedWaitTime ?? '?'}</span> s · relaxation level{' '}
          <span className="mm-level">{status?.currentRelaxationLevel ?? 0}</span> · potential matches{' '}
          <span className="mm-potential">{status?.potentialMatchesFound ?? 0}</span>
        </p>
        <button type="button" onClick={cancel}>
          Cancel
        </button>
        {message && <p className="note">{message}</p>}
      </div>
    );
  }
  return (
    <form className="panel matchmaking" onSubmit={find}>
      <h2>Find a match</h2>
      <label>
        Game{' '}
        <select
          name="game"
          value={gameId}
          onChange={(e) => {
            setGameId(e.target.value);
            setMode(games.find((g) => g.id === e.target.value)?.modes[0]?.id || '');
          }}
        >
          {games.map((g) => (
            <option key={g.id} value={g.id}>
              {g.name}
            </option>
          ))}
        </select>
      </label>{' '}
      <label>
        Mode{' '}
        <select name="mode" value={mode} onChange={(e) => setMode(e.target.value)}>
          {(game?.modes || []).map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} ({m.capacity.min}–{m.capacity.max} players)
            </option>
          ))}
        </select>
      </label>{' '}
      <label>
        Region{' '}
        <select name="region" value={region} onChange={(e) => setRegion(e.target.value)}>
          {REGIONS.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </label>{' '}
      <button type="submit" disabled={!gameId || !mode}>
        Find match
      </button>
      {message && <p className="note">{message}</p>}
    </form>
  );
}
