"""The one-machine stack of `syllabus up`: NATS and Valkey started locally, the services supervised as child
processes, health checked."""
