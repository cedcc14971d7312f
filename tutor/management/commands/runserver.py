"""``manage.py runserver`` as django.contrib.staticfiles gives it, listening with a backlog a class can fill."""

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserver
from django.core.servers.basehttp import WSGIServer


class ClassroomWSGIServer(WSGIServer):
    # Django's development server listens with a backlog of 10. A class of 30 connecting at once to the
    # embedded default on a busy machine overflowed it, and with SYN cookies on (Linux's default) the kernel
    # then reset a connection the client already thought open: "Connection reset by peer" on one answer
    # (tests/tutor/test_embedded.py, once in a fresh clone's run). The kernel caps it at net.core.somaxconn.
    request_queue_size = 128


class Command(StaticfilesRunserver):
    server_cls = ClassroomWSGIServer
