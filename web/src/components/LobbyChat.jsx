// The documents' LobbyChat component (design doc 001, section 9.2), as written.
import React, { useEffect, useState } from 'react';
import socketService from '../services/socketService';

function LobbyChat({ lobbyId }) {
  const [messages, setMessages] = useState([]);
  const [inputValue, setInputValue] = useState('');
  const [typingUsers, setTypingUsers] = useState([]);
  const [isConnected, setIsConnected] = useState(socketService.socket?.connected || false);
  
  useEffect(() => {
    // Join lobby and chat when component mounts
    socketService.joinLobby(lobbyId);
    socketService.joinChat(`lobby:${lobbyId}`);
    
    // Set up event listeners
    const onChatMessage = (data) => {
      if (data.chatId === `lobby:${lobbyId}`) {
        setMessages(prevMessages => [...prevMessages, data.message]);
      }
    };
    
    const onChatTyping = (data) => {
      if (data.chatId === `lobby:${lobbyId}`) {
        if (data.isTyping) {
          setTypingUsers(prev => [...prev.filter(u => u.id !== data.user.id), data.user]);
        } else {
          setTypingUsers(prev => prev.filter(u => u.id !== data.user.id));
        }
      }
    };
    
    const onConnect = () => {
      setIsConnected(true);
      // Rejoin on reconnection
      socketService.joinLobby(lobbyId);
      socketService.joinChat(`lobby:${lobbyId}`);
    };
    
    const onDisconnect = () => {
      setIsConnected(false);
    };
    
    // Register event listeners
    socketService.on('chat:message', onChatMessage);
    socketService.on('chat:typing', onChatTyping);
    socketService.on('connect', onConnect);
    socketService.on('disconnect', onDisconnect);
    
    // Cleanup function
    return () => {
      // Leave lobby and chat when component unmounts
      socketService.leaveLobby(lobbyId);
      
      // Remove event listeners
      socketService.off('chat:message', onChatMessage);
      socketService.off('chat:typing', onChatTyping);
      socketService.off('connect', onConnect);
      socketService.off('disconnect', onDisconnect);
    };
  }, [lobbyId]);
  
  // Handle input change with typing indicator
  const handleInputChange = (e) => {
    const value = e.target.value;
    
    // Send typing indicator if value changes from empty to non-empty or vice versa
    if ((value === '' && inputValue !== '') || (value !== '' && inputValue === '')) {
      socketService.emit('chat:typing', {
        chatId: `lobby:${lobbyId}`,
        isTyping: value !== ''
      });
    }
    
    setInputValue(value);
  };
  
  // Handle message submission
  const handleSubmit = (e) => {
    e.preventDefault();
    
    if (inputValue.trim() === '') {
      return;
    }
    
    socketService.sendMessage(`lobby:${lobbyId}`, inputValue);
    
    // Reset input and typing indicator
    setInputValue('');
    socketService.emit('chat:typing', {
      chatId: `lobby:${lobbyId}`,
      isTyping: false
    });
  };
  
  return (
    <div className="lobby-chat">
      <div className="chat-status">
        {isConnected ? 'Connected' : 'Disconnected'}
      </div>
      
      <div className="chat-messages">
        {messages.map((message, index) => (
          <div key={message.id || index} className="chat-message">
            <div className="message-sender">{message.sender.displayName}</div>
            <div className="message-content">{message.content}</div>
            <div className="message-time">
              {new Date(message.createdAt).toLocaleTimeString()}
            </div>
          </div>
        ))}
      </div>
      
      {typingUsers.length > 0 && (
        <div className="typing-indicator">
          {typingUsers.length === 1
            ? `${typingUsers[0].username} is typing...`
            : `${typingUsers.length} people are typing...`}
        </div>
      )}
      
      <form onSubmit={handleSubmit} className="chat-input-form">
        <input
          type="text"
          value={inputValue}
          onChange={handleInputChange}
          placeholder="Type a message..."
          disabled={!isConnected}
        />
        <button type="submit" disabled={!isConnected || inputValue.trim() === ''}>
          Send
        </button>
      </form>
    </div>
  );
}

export default LobbyChat;
