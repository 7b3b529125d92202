#!/usr/bin/env bash
# Java 17+ is needed by the JPMML converters/evaluator and by Spark.
# Installs default-jre-headless with apt-get when java is missing and we are root.
set -euo pipefail

java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n 1 |
    awk '{ print ($1 == 1) ? $2 : $1 }'
}

if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "java not found: installing default-jre-headless with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null
  else
    echo "error: java not found. Java 17 or newer is required (JPMML, Spark)." >&2
    echo "  fix: sudo apt-get install default-jre-headless  (or install a JDK 17+ and put java on PATH)" >&2
    exit 3
  fi
fi

major=$(java_major)
if [ -z "$major" ] || [ "$major" -lt 17 ]; then
  echo "error: $(command -v java) is Java ${major:-?}; Java 17 or newer is required (JPMML, Spark)." >&2
  echo "  fix: install default-jre-headless (Java 17+) and put it first on PATH" >&2
  exit 3
fi
