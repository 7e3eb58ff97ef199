"""An example task package, outside Syllabus: two tasks, one typed by its own proto, one taking JSON."""
