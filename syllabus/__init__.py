"""Syllabus: the shared runtime every service uses."""
