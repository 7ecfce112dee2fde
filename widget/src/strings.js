// The widget's own labels in the languages data-language accepts. A key missing in one
// language falls back to English (the greeting is the chatbot's own: the one here, the
// server's default, is only shown when the config could not be loaded).

const STRINGS = {
  en: {
    open: 'Open chat', close: 'Close chat', send: 'Send', stop: 'Stop', retry: 'Retry',
    retryIn: 'Retry in {s} s', newChat: 'New conversation', placeholder: 'Ask a question…',
    label: 'Your message', you: 'You said:', bot: 'Assistant:', sources: 'Sources',
    source: 'Source {n}: {title}', stopped: 'Stopped.', interrupted: 'This answer was interrupted.',
    greeting: 'Hi! How can I help?', starters: 'Suggested questions', typing: 'Assistant is typing',
    network: "Can't reach the chat service. Check your connection.",
    rate: 'Too many messages. Please wait {s} seconds, then try again.',
    server: 'The chat service had a problem answering. Please try again.',
    cut: 'The answer was cut off. Please try again.', reconnecting: 'Reconnecting…',
  },
  fr: {
    open: 'Ouvrir le chat', close: 'Fermer le chat', send: 'Envoyer', stop: 'Arrêter', retry: 'Réessayer',
    retryIn: 'Réessayer dans {s} s', newChat: 'Nouvelle conversation', placeholder: 'Votre question…',
    label: 'Votre message', you: 'Vous :', bot: 'Assistant :', source: 'Source {n} : {title}',
    stopped: 'Arrêté.', interrupted: 'Réponse interrompue.',
    network: 'Service injoignable. Vérifiez votre connexion.', rate: 'Trop de messages. Attendez {s} s.',
    server: 'Le service a rencontré un problème. Réessayez.', cut: 'Réponse coupée. Réessayez.',
    reconnecting: 'Reconnexion…',
  },
  de: {
    open: 'Chat öffnen', close: 'Chat schließen', send: 'Senden', stop: 'Stopp', retry: 'Wiederholen',
    retryIn: 'Wiederholen in {s} s', newChat: 'Neues Gespräch', placeholder: 'Ihre Frage…',
    label: 'Ihre Nachricht', you: 'Sie:', bot: 'Assistent:', sources: 'Quellen', source: 'Quelle {n}: {title}',
    stopped: 'Gestoppt.', interrupted: 'Antwort unterbrochen.',
    network: 'Dienst nicht erreichbar. Prüfen Sie die Verbindung.', rate: 'Zu viele Nachrichten. Bitte {s} s warten.',
    server: 'Der Dienst hatte ein Problem. Bitte erneut versuchen.', cut: 'Antwort abgeschnitten. Bitte erneut versuchen.',
    reconnecting: 'Verbinde neu…',
  },
  es: {
    open: 'Abrir chat', close: 'Cerrar chat', send: 'Enviar', stop: 'Detener', retry: 'Reintentar',
    retryIn: 'Reintentar en {s} s', newChat: 'Nueva conversación', placeholder: 'Tu pregunta…',
    label: 'Tu mensaje', you: 'Tú:', bot: 'Asistente:', sources: 'Fuentes', source: 'Fuente {n}: {title}',
    stopped: 'Detenido.', interrupted: 'Respuesta interrumpida.',
    network: 'Sin conexión con el chat. Revisa tu red.', rate: 'Demasiados mensajes. Espera {s} s.',
    server: 'El chat tuvo un problema. Inténtalo de nuevo.', cut: 'Respuesta cortada. Inténtalo de nuevo.',
    reconnecting: 'Reconectando…',
  },
};

// The language the labels are in: the one asked for if the widget has it, else English.
export function languageOf(language) {
  return STRINGS[language] ? language : 'en';
}

// strings(language) -> t(key, vars): "{name}" placeholders are filled from vars.
export function strings(language) {
  const chosen = STRINGS[language] || STRINGS.en;
  return (key, vars) => String(chosen[key] || STRINGS.en[key]).replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? vars[k] : ''));
}
