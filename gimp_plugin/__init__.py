"""GIMP 3 plug-in "Restore JPEG Line Art" (Filters > Enhance) and its installer.

``gimp_plugin/lineart_restore/`` is the plug-in folder GIMP loads (entry file
``lineart_restore.py`` plus the GIMP-free ``lineart_gimp`` package); ``python -m
gimp_plugin.install`` copies it, with its bundled dependencies, into a GIMP 3 profile.
See docs/gimp.md.
"""
