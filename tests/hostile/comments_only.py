# a cost function will go here
