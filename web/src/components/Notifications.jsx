// Notification badge (notification:count) and list (notification:new), mark one or all read.
import { useCallback, useEffect, useState } from 'react';
import { api } from '../services/api';
import { useSocketEvent } from '../hooks';

export default function Notifications() {
  const [items, setItems] = useState([]);
  const [unread, setUnread] = useState(0);
  const [open, setOpen] = useState(false);

  const load = useCallback(async () => {
    try {
      const { data } = await api('GET', '/notifications?limit=50');
      setItems(data);
      setUnread(data.filter((n) => !n.read).length);
    } catch (err) {
      console.warn('notifications:', err.message);
    }
  }, []);
  useEffect(() => {
    load();
  }, [load]);

  useSocketEvent('notification:count', (c) => setUnread(c.unread ?? c.unreadCount ?? 0));
  useSocketEvent('notification:new', ({ notification }) => {
    setItems((list) => [{ ...notification, read: false }, ...list.filter((n) => n.id !== notification.id)]);
  });

  const markRead = async (id) => {
    try {
      await api('PATCH', `/notifications/${id}/read`);
      setItems((list) => list.map((n) => (n.id === id ? { ...n, read: true } : n)));
    } catch (err) {
      console.warn('mark read:', err.message);
    }
  };
  const markAll = async () => {
    try {
      const { data } = await api('POST', '/notifications/read-all');
      setUnread(data.unread);
      setItems((list) => list.map((n) => ({ ...n, read: true })));
    } catch (err) {
      console.warn('mark all read:', err.message);
    }
  };

  return (
    <div className="panel notifications">
      <h2>
        <button type="button" className="bell" onClick={() => setOpen(!open)} aria-expanded={open}>
          Notifications <span className={`badge${unread ? ' unread' : ''}`} data-testid="notification-count">{unread}</span>
        </button>
      </h2>
      {open && (
        <>
          <button type="button" onClick={markAll} disabled={unread === 0}>
            Mark all read
          </button>
          <ul className="notification-list">
            {items.length === 0 && <li className="muted">Nothing yet</li>}
            {items.map((n) => (
              <li key={n.id} className={`notification${n.read ? '' : ' is-unread'}`}>
                <strong>{n.title}</strong>
                <div>{n.message}</div>
                {!n.read && (
                  <button type="button" className="link" onClick={() => markRead(n.id)}>
                    Mark read
                  </button>
                )}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}
