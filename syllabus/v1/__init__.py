"""Generated protobuf and gRPC code for syllabus.v1 (scripts/gen_proto.py writes everything here but this file)."""
