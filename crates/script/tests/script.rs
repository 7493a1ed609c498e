//! Integration tests of the script sandbox, driven by tables of scripts and expected outcomes.

mod script {
    mod api;
    mod cases;
    mod functions;
    mod harness;
    mod shape;
}
