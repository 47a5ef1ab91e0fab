#!/usr/bin/env node
// The `ringkv` command (built from src/cli by `npm run build`).
import '../dist/cli/index.js';
