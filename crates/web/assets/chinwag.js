// Placeholder: the protocol library of the web client is written separately.
export const SUBPROTOCOL = "chinwag.v1";
