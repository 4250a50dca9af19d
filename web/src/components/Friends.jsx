// Friends with live presence dots (user:status), incoming requests, and "add by user id".
import { useCallback, useEffect, useState } from 'react';
import { api, userName } from '../services/api';
import { useSocketEvent, useUserNames } from '../hooks';

export default function Friends({ onChat }) {
  const [friends, setFriends] = useState([]);
  const [requests, setRequests] = useState([]);
  const [addId, setAddId] = useState('');
  const [message, setMessage] = useState('');

  const load = useCallback(async () => {
    try {
      const [f, r] = await Promise.all([api('GET', '/friends'), api('GET', '/friends/requests?direction=incoming')]);
      setFriends(f.data);
      setRequests(r.data);
    } catch (err) {
      setMessage(err.message);
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  useSocketEvent('connect', load); // presence may have changed while we were away
  useSocketEvent('user:status', ({ userId, status }) => {
    setFriends((list) => list.map((f) => (f.user.id === userId ? { ...f, status } : f)));
  });
  useSocketEvent('notification:new', ({ notification }) => {
    if (notification?.type?.startsWith('friend')) load();
  });

  const name = useUserNames(
    requests.map((r) => r.requesterId),
    userName,
  );

  const add = async (e) => {
    e.preventDefault();
    const id = addId.trim();
    if (!id) return;
    try {
      await api('POST', '/friends/requests', { userId: id });
      setAddId('');
      setMessage('Friend request sent');
    } catch (err) {
      setMessage(err.message);
    }
  };
  const answer = async (id, verb) => {
    try {
      await api('POST', `/friends/requests/${id}/${verb}`);
      setMessage('');
      load();
    } catch (err) {
      setMessage(err.message);
    }
  };

  return (
    <div className="panel friends">
      <h2>Friends</h2>
      <ul className="friend-list">
        {friends.length === 0 && <li className="muted">No friends yet</li>}
        {friends.map((f) => (
          <li key={f.user.id} className="friend" data-user-id={f.user.id} data-status={f.status}>
            <span className={`dot status-${f.status}`} title={f.status} />
            <span className="friend-name">{f.user.displayName || f.user.username}</span>
            <span className="muted"> {f.status}</span>
            <button type="button" className="link" onClick={() => onChat(f.user)}>
              Chat
            </button>
          </li>
        ))}
      </ul>
      {requests.length > 0 && (
        <>
          <h3>Requests</h3>
          <ul className="request-list">
            {requests.map((r) => (
              <li key={r.id} className="friend-request">
                {name(r.requesterId)}{' '}
                <button type="button" onClick={() => answer(r.id, 'accept')}>
                  Accept
                </button>{' '}
                <button type="button" onClick={() => answer(r.id, 'reject')}>
                  Reject
                </button>
              </li>
            ))}
          </ul>
        </>
      )}
      <form onSubmit={add} className="add-friend">
        <input
          name="friendId"
          placeholder="Friend's user id"
          value={addId}
          onChange={(e) => setAddId(e.target.value)}
        />
        <button type="submit">Add</button>
      </form>
      {message && <p className="note">{message}</p>}
    </div>
  );
}
