"""What the Krita and GIMP plug-ins share: error wording, client loading, the server launcher,
and the vendoring both installers use.

* :mod:`plugin_common.errors`   ``PluginError``, artist-facing words for client/server errors,
  capability checks on the server's ``welcome``, the notes that apply to a layer, client loading.
* :mod:`plugin_common.launcher` start ``python -m server`` detached from the editor, once, and
  wait until it answers (standard library only).
* :mod:`plugin_common.bundle`   build time only: the files both installers put next to the
  plug-in (``lrclient`` = the server's protocol/client files + the two modules above, the
  pure-Python ``websockets`` and ``msgpack``, their licences, ``VERSIONS.txt``, ``launch.json``).

In an installed plug-in ``errors.py`` and ``launcher.py`` sit in the package ``lrclient`` beside
``protocol.py`` and ``client.py``; in this checkout they import those from the ``server`` package.
Nothing here imports torch, numpy, Qt, Krita or GIMP.
"""

#: The modules of this package that the plug-ins bundle (into ``lrclient``).
BUNDLED_FILES = ("errors.py", "launcher.py")
