// Direct chat with a friend: history, live messages, typing indicator and read receipts (chat:read).
// Joins the chat room on open and again after every reconnect, like the documents' LobbyChat.
import { useEffect, useRef, useState } from 'react';
import { api } from '../services/api';
import socketService from '../services/socketService';
import { useConnectionState, useSocketEvent } from '../hooks';

export default function DirectChat({ friend, me, onClose }) {
  const [chatId, setChatId] = useState(null);
  const [messages, setMessages] = useState([]);
  const [input, setInput] = useState('');
  const [typing, setTyping] = useState(false);
  const [seenId, setSeenId] = useState(null); // the last message here when the friend's read receipt came
  const [error, setError] = useState('');
  const connected = useConnectionState() === 'connected';
  const bottom = useRef(null);
  // The newest message shown, as the socket handlers see it: `messages` in a handler is the last
  // render's, so a read receipt arriving in the same tick as the message it answers would miss it.
  const lastId = useRef(null);

  useEffect(() => {
    let live = true;
    setMessages([]);
    lastId.current = null;
    setChatId(null);
    (async () => {
      try {
        const { data: chat } = await api('POST', '/chats/direct', { userId: friend.id });
        const { data: history } = await api('GET', `/chats/${chat.id}/messages?limit=50`);
        if (!live) return;
        setMessages([...history].reverse());
        lastId.current = history[0]?.id ?? null; // the API lists newest first
        setChatId(chat.id);
      } catch (err) {
        if (live) setError(err.message);
      }
    })();
    return () => {
      live = false;
    };
  }, [friend.id]);

  // Join the room (and leave it when the panel closes); mark the chat read.
  useEffect(() => {
    if (!chatId) return undefined;
    socketService.joinChat(chatId);
    socketService.emit('chat:read', { chatId });
    return () => socketService.emit('chat:leave', { chatId });
  }, [chatId]);
  useSocketEvent('connect', () => {
    if (!chatId) return;
    socketService.joinChat(chatId);
    socketService.emit('chat:read', { chatId });
  });

  useSocketEvent('chat:message', (d) => {
    if (!chatId || d.chatId !== chatId) return;
    setMessages((list) => (list.some((m) => m.id === d.message.id) ? list : [...list, d.message]));
    lastId.current = d.message.id;
    if (d.message.sender.id !== me.id) socketService.emit('chat:read', { chatId });
  });
  useSocketEvent('chat:typing', (d) => chatId && d.chatId === chatId && d.user.id !== me.id && setTyping(d.isTyping));
  useSocketEvent('chat:read', (d) => {
    if (chatId && d.chatId === chatId && d.userId !== me.id) setSeenId(lastId.current);
  });

  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: 'nearest' });
  }, [messages.length]);

  const change = (e) => {
    const value = e.target.value;
    if ((value === '') !== (input === '')) socketService.emit('chat:typing', { chatId, isTyping: value !== '' });
    setInput(value);
  };
  const send = (e) => {
    e.preventDefault();
    if (!input.trim()) return;
    socketService.sendMessage(chatId, input);
    socketService.emit('chat:typing', { chatId, isTyping: false });
    setInput('');
  };

  // My last message is "seen" when the friend's last read receipt came after it was shown here.
  const lastMineAt = messages.findLastIndex((m) => m.sender.id === me.id);
  const seen = lastMineAt >= 0 && seenId !== null && messages.findIndex((m) => m.id === seenId) >= lastMineAt;
  return (
    <div className="panel direct-chat" data-testid="direct-chat">
      <h2>
        Chat with {friend.displayName || friend.username}{' '}
        <button type="button" className="link" onClick={onClose}>
          Close
        </button>
      </h2>
      {error && <p className="note">{error}</p>}
      <div className="chat-messages">
        {messages.map((m) => (
          <div key={m.id} className={`chat-message${m.sender.id === me.id ? ' mine' : ''}`}>
            <div className="message-sender">{m.sender.displayName || m.sender.username}</div>
            <div className="message-content">{m.content}</div>
            <div className="message-time">{new Date(m.createdAt).toLocaleTimeString()}</div>
          </div>
        ))}
        <div ref={bottom} />
      </div>
      {seen && <div className="read-receipt">Seen</div>}
      {typing && <div className="typing-indicator">{friend.username} is typing...</div>}
      <form onSubmit={send} className="chat-input-form">
        <input value={input} onChange={change} placeholder="Message…" disabled={!connected || !chatId} />
        <button type="submit" disabled={!connected || !chatId || !input.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}
