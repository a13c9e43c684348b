"""bench/apps: the Flask app every setup runs. /fast sleeps 1 ms, /slow 200 ms (a report,
an upload, a slow query), both answering a small JSON document."""

import time

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/fast")
def fast():
    time.sleep(0.001)
    return jsonify(ok=True, took_ms=1)


@app.route("/slow")
def slow():
    time.sleep(0.2)
    return jsonify(ok=True, took_ms=200)
