// Starts sockjs-client inside the hidden iframe of the iframe transports
// (/chat/iframe.html). A file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts everywhere.
/* global SockJS */
SockJS.bootstrap_iframe();
