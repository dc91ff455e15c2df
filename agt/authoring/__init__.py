"""Authoring tools over policy files: formatting (:mod:`agt.authoring.fmt`) and checking (:mod:`agt.authoring.check`)."""
