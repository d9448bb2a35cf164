from initsweep.cli import train

train()
