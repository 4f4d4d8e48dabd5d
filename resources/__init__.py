"""Files the application loads at run time: icons, the .desktop entry, sample photos.

A package (rather than a loose folder) so that an installed wheel, an
editable checkout and a PyInstaller bundle all find them the same way.
"""
