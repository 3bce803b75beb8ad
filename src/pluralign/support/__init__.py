"""What every wing leans on, importing none of them: files, names, errors and redaction,
deadlines, options, the component registry, home, CPU facts and strict input."""
