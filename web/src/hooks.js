import { useEffect, useRef, useState } from 'react';
import socketService from './services/socketService';

// useSocketEvent listens to a socket event for the component's lifetime; the latest handler is called,
// so handlers may read fresh state without re-subscribing.
export function useSocketEvent(event, handler) {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => socketService.on(event, (data) => ref.current(data)), [event]);
}

// useConnectionState is 'connecting', 'connected', 'reconnecting' or 'disconnected'.
export function useConnectionState() {
  const [state, setState] = useState(socketService.state);
  useEffect(() => socketService.onState(setState), []);
  return state;
}

// useUserName resolves a user id to a name (falls back to a short id while loading or on error).
export function useUserNames(ids, resolve) {
  const [names, setNames] = useState({});
  const key = ids.join(',');
  useEffect(() => {
    let live = true;
    ids.forEach((id) => {
      resolve(id)
        .then((n) => live && setNames((prev) => (prev[id] === n ? prev : { ...prev, [id]: n })))
        .catch(() => {});
    });
    return () => {
      live = false;
    };
  }, [key]); // eslint-disable-line react-hooks/exhaustive-deps
  return (id) => names[id] || `user ${id.slice(-6)}`;
}
