module github.com/omnigate/omnigate

go 1.26.8
