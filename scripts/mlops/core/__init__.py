"""What every part shares: config loading (`config`), the one exception hierarchy (`errors`), AWS
sessions and role assumption (`aws`), and git facts (`gitinfo`). It imports no other part of `mlops`."""
