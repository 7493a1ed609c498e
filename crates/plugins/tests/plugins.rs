//! Integration tests of the plugins: built-in actions, script plugins, the registry's schema
//! checks and the external task state machine. Network traffic goes to 127.0.0.1 only.

mod plugins {
    mod external;
    mod http;
    mod inventory;
    mod notify;
    mod registry;
    mod script;
    mod server;
    mod template;
}
