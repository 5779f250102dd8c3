# placeholder while the report stage is written
