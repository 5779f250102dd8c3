# placeholder while the analysis stage is written
