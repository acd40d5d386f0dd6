// Placeholder: the web client is written separately and copied in.
import "./chinwag.js";
