"""End-to-end tests of the shipped examples with the real procmail, fetchmail, dovecot and
Postfix from Debian, run as ordinary local users, on loopback only."""
